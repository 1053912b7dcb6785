"""The decision log on PostgreSQL at scale: retention, insert cost and size per decision, side by side with
the log as it was before migrations (varchar timestamps, no time index, 32-bit sequence), in the same run.

Each layout gets --rows decisions spread over 10 days for one model (filled server-side with realistic
features and reasons), then:

  retention, 10 %   delete the oldest day's decisions (DecisionLog.delete_through the last seq logged before
                    the cut-off: a sealed range's end), as a nightly run does
  retention, rest   delete everything older than the last day (90 % of the log at once)
  insert            DecisionLog.record_many in batches of 32 (the scoring API's micro-batches), per decision
  size              table + indexes + TOAST per decision, before retention

Goal (issue 21): retention on 1,000,000 logged decisions in under 10 s. Run by hand (a few minutes):

    .venv/bin/python bench/decision_log.py [--rows 1000000] [--database-url postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, make_url  # noqa: E402

from governance import migrations  # noqa: E402
from governance.db import engine_for  # noqa: E402
from governance.decisions import DecisionLog  # noqa: E402
from governance.timestamps import utc_timestamp  # noqa: E402
from tests.storage.test_migrations import premigration_statements  # noqa: E402

MODEL = "credit_scoring"
START = datetime(2026, 11, 1, tzinfo=UTC)
PREMIGRATION = REPO / "tests" / "fixtures" / "premigration" / "postgresql.sql"
# A realistic row: 20 features, three reasons with their texts (what the scoring API logs).
FEATURES = (
    "json_build_object("
    + ", ".join(f"'feature_{i}', round((random() * 100000)::numeric, 2)" for i in range(20))
    + ")::text"
)
REASONS = (
    """'[{"code":"R01","feature":"debt_to_income","text":"Debt is high relative to income"},'"""
    """ || '{"code":"R07","feature":"missed_payments","text":"Recent missed payments"},'"""
    """ || '{"code":"R12","feature":"credit_history_months","text":"Short credit history"}]'"""
)


def _fill(url: str, rows: int, typed: bool) -> None:
    ts = f"timestamptz '{utc_timestamp(START)}' + (g * interval '864 milliseconds') * {1_000_000 / rows}"  # 10 days
    ts = ts if typed else f"to_char(({ts}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    with engine_for(url).begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO decisions (decision_id, ts, model, version, input_digest, features, score, outcome,"
            " reasons, reasons_withheld, kill_switch)"
            f" SELECT md5(g::text), {ts}, '{MODEL}', 3, md5(g::text) || md5((g + 1)::text), {FEATURES},"
            f" random(), 'approve', {REASONS}, 0, false FROM generate_series(1, {rows}) g"
        )
        conn.exec_driver_sql("ANALYZE decisions")


def _size_per_row(url: str, rows: int) -> float:
    with engine_for(url).connect() as conn:
        return conn.exec_driver_sql("SELECT pg_total_relation_size('decisions')").scalar_one() / rows


def _timed(step) -> tuple[float, int]:
    started = time.perf_counter()
    result = step()
    return time.perf_counter() - started, result


def _insert_cost(log: DecisionLog, n: int = 6400) -> float:
    row = dict(
        ts=utc_timestamp(),
        model=MODEL,
        version=3,
        input_digest="a" * 64,
        features={f"feature_{i}": 1234.5 for i in range(20)},
        protected=None,
        score=0.3,
        outcome="approve",
        reasons=[{"code": "R01", "feature": "debt_to_income", "text": "Debt is high relative to income"}] * 3,
        kill_switch=False,
    )
    started = time.perf_counter()
    for _ in range(n // 32):
        log.record_many([{**row, "decision_id": uuid.uuid4().hex} for _ in range(32)])
    return (time.perf_counter() - started) / n


def _old_delete_before(url: str, before: str) -> int:
    """What retention ran before migrations: the same DELETE on varchar timestamps."""
    with engine_for(url).begin() as conn:
        return conn.exec_driver_sql("DELETE FROM decisions WHERE model = %s AND ts < %s", (MODEL, before)).rowcount


def _last_seq_before(url: str, before: str) -> int:
    """The end of the last sealed range logged before `before`, as retention finds it in the ledger."""
    with engine_for(url).connect() as conn:
        return conn.exec_driver_sql("SELECT max(seq) FROM decisions WHERE ts < %s", (before,)).scalar_one()


def measure(url: str, rows: int, layout: str) -> dict:
    old = layout == "before migrations"
    if old:
        with engine_for(url).begin() as conn:
            for statement in premigration_statements(PREMIGRATION):
                conn.exec_driver_sql(statement)
    else:
        migrations.upgrade(url, "decisions")
    _fill(url, rows, typed=not old)
    size = _size_per_row(url, rows)
    log = None if old else DecisionLog(url)
    cutoffs = [utc_timestamp(START + timedelta(days=d)) for d in (1, 9)]
    ends = {c: _last_seq_before(url, c) for c in cutoffs}
    timings = [
        _timed(lambda c=c: _old_delete_before(url, c) if log is None else log.delete_through(MODEL, ends[c]))
        for c in cutoffs
    ]
    return {"size": size, "first": timings[0], "rest": timings[1], "insert": _insert_cost(log) if log else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    admin_url = make_url(args.database_url)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    results = {}
    for layout in ("before migrations", "migrated"):
        name = f"bench_decisions_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = admin_url.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
        try:
            results[layout] = measure(url, args.rows, layout)
        finally:
            engine_for(url).dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    old, new = results["before migrations"], results["migrated"]
    print(f"decision log on PostgreSQL, {args.rows:,} decisions over 10 days")
    print(f"{'':28}{'before migrations':>20}{'migrated':>14}{'ratio':>8}")
    for key, label in (("first", "retention, oldest day"), ("rest", "retention, 8 more days")):
        (before, n_before), (after, n_after) = old[key], new[key]
        print(f"{label:28}{before:>18.2f} s{after:>12.2f} s{after / before:>8.2f}  ({n_before:,} / {n_after:,} rows)")
    print(f"{'size per decision':28}{old['size']:>18.0f} B{new['size']:>12.0f} B{new['size'] / old['size']:>8.2f}")
    print(f"{'insert per decision':28}{'':>20}{new['insert'] * 1e6:>10.0f} us  (record_many, batches of 32)")


if __name__ == "__main__":
    main()
