"""Alembic migrations of our own stores, on SQLite and PostgreSQL: from empty, from the schema the stores
created before migrations (keeping every row), idempotent, serialised; PostgreSQL stores refuse an old schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, insert, inspect, select, text

from governance import migrations
from governance.control import ControlStore
from governance.control import metadata as control_metadata
from governance.db import engine_for
from governance.decisions import DecisionLog, decisions
from governance.ledger import Ledger
from governance.ledger.tables import ledger_tables
from governance.monitoring.lease import metadata as lease_metadata
from governance.serving.tokens import metadata as token_metadata
from governance.trust.store import _metadata as statement_metadata

PREMIGRATION = Path(__file__).resolve().parents[1] / "fixtures" / "premigration"
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
OLD_DECISION = dict(
    decision_id="before-upgrade",
    ts="2026-11-01T10:00:00.123456Z",
    model="credit_scoring",
    version=3,
    input_digest="a" * 64,
    features='{"income":1}',
    protected=None,
    score=0.25,
    outcome="approve",
    reasons="[]",
    kill_switch=False,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(request, tmp_path) -> dict[str, str]:
    """Empty databases for the two schemas (one PostgreSQL database holds both, as in production)."""
    if request.param == "sqlite":
        return {s: f"sqlite:///{tmp_path / f'{s}.db'}" for s in migrations.SCHEMAS}
    url = request.getfixturevalue("empty_postgres_url")
    return dict.fromkeys(migrations.SCHEMAS, url)


def premigration_statements(path: Path) -> list[str]:
    """The SQL statements of a schema file (comment lines dropped)."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("--"))
    return [statement for statement in text.split(";\n") if statement.strip()]


def _load_premigration_schema(urls: dict[str, str]) -> None:
    engine = engine_for(urls["governance"])
    files = ["postgresql.sql"] if engine.dialect.name == "postgresql" else ["sqlite_governance.sql"]
    for name in files + ([] if engine.dialect.name == "postgresql" else ["sqlite_decisions.sql"]):
        target = engine_for(urls["decisions"] if "decisions" in name else urls["governance"])
        with target.begin() as conn:
            for statement in premigration_statements(PREMIGRATION / name):
                conn.exec_driver_sql(statement)


def _code_tables(dialect: str) -> dict[str, list]:
    """The tables the stores' code queries, by schema."""
    governance = [*ledger_tables(dialect), *control_metadata.tables.values(), *lease_metadata.tables.values()]
    governance += [*statement_metadata.tables.values(), *token_metadata.tables.values()]
    return {"governance": governance, "decisions": list(decisions.metadata.tables.values())}


def _diff(url: str, tables: list) -> list:
    metadata = MetaData()
    for table in tables:
        table.to_metadata(metadata)
    with engine_for(url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(context, metadata) if not _is_version_table(d)]


def _is_version_table(difference) -> bool:
    return difference[0] == "remove_table" and difference[1].name.startswith("alembic_version_")


def test_from_empty_both_schemas_reach_head_and_match_the_code(urls):
    for schema, url in urls.items():
        assert migrations.state(url, schema).current is None
        assert migrations.upgrade(url, schema).current is None
        assert migrations.state(url, schema).is_current
    code = _code_tables(engine_for(urls["governance"]).dialect.name)
    if urls["governance"] == urls["decisions"]:  # production: one database
        assert _diff(urls["governance"], code["governance"] + code["decisions"]) == []
    else:
        assert [_diff(urls[s], code[s]) for s in migrations.SCHEMAS] == [[], []]


def test_the_premigration_schema_upgrades_without_losing_a_row(urls, tmp_path):
    # A real ledger chain, written by today's code in a scratch database, copied row by row into the old schema.
    scratch = f"sqlite:///{tmp_path / 'scratch.db'}"
    source = Ledger(scratch)
    for n in range(5):
        source.append_record(
            actor="test", action="test.entry", subject={"model": "m", "version": str(n)}, payload={"n": n}
        )
    _load_premigration_schema(urls)
    entries, nodes = ledger_tables(engine_for(urls["governance"]).dialect.name)
    old_entries, old_nodes = ledger_tables("sqlite")
    with engine_for(scratch).connect() as read, engine_for(urls["governance"]).begin() as write:
        stored = [c.name for c in old_entries.columns if c.computed is None]
        write.execute(
            insert(entries), [dict(r) for r in read.execute(select(*[old_entries.c[n] for n in stored])).mappings()]
        )
        node_rows = [dict(r) for r in read.execute(select(old_nodes)).mappings()]
        if node_rows:  # the Merkle nodes cache may be empty
            write.execute(insert(nodes), node_rows)
    with engine_for(urls["decisions"]).begin() as conn:
        conn.execute(
            text(f"INSERT INTO decisions ({', '.join(OLD_DECISION)}) VALUES (:{', :'.join(OLD_DECISION)})"),
            OLD_DECISION,
        )

    for schema, url in urls.items():
        assert migrations.upgrade(url, schema).current is None  # no version table before
        assert migrations.state(url, schema).is_current

    ledger = Ledger(urls["governance"])
    report = ledger.verify()
    assert (report.ok, report.size, report.root) == (True, 5, source.verify().root)
    log = DecisionLog(urls["decisions"])
    kept = log.get("before-upgrade")
    assert (kept.ts, kept.version, kept.score, kept.features) == (OLD_DECISION["ts"], 3, 0.25, {"income": 1})
    assert log.expire_inputs("credit_scoring", "2026-11-01T10:00:00.123457Z") == 1  # its time compares as time
    assert log.delete_through("credit_scoring", kept.seq) == 1


def test_upgrade_twice_is_a_no_op(urls):
    for schema, url in urls.items():
        migrations.upgrade(url, schema)
    log = DecisionLog(urls["decisions"])
    log.record(
        decision_id="d1",
        ts="2026-11-02T10:00:00.000000Z",
        model="m",
        version=None,
        input_digest="b" * 64,
        features=None,
        protected=None,
        score=None,
        outcome="refer",
        reasons=[],
        kill_switch=True,
    )
    again = [migrations.upgrade(url, schema) for schema, url in urls.items()]
    assert all(s.is_current for s in again)
    assert log.count() == 1


def test_two_upgrades_at_once_run_one_after_the_other(urls):
    """Two processes (two deploy scripts): the second waits for the first's lock, then finds nothing to do."""
    script = (
        "import sys; from governance import migrations; print(migrations.upgrade(sys.argv[1], sys.argv[2]).current)"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, urls[s], s], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for s in migrations.SCHEMAS
        for _ in range(2)
    ]
    results = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    assert [(code, err) for code, _, err in results] == [(0, "")] * 4
    froms = sorted(out.strip() for _, out, _ in results)
    assert froms.count("None") == 2  # one upgrade per schema; the other found it at head
    assert all(migrations.state(url, s).is_current for s, url in urls.items())


def test_on_postgresql_stores_refuse_a_schema_that_is_not_at_head(empty_postgres_url):
    for open_store in (Ledger, ControlStore, DecisionLog):
        with pytest.raises(migrations.SchemaNotCurrent, match="run `govern db upgrade`") as refused:
            open_store(empty_postgres_url)
        section = re.search(r"see docs/operations\.md, ([^)]+)\)$", str(refused.value))
        assert section is not None and f"\n## {section.group(1)}\n" in OPERATIONS.read_text()
    assert inspect(engine_for(empty_postgres_url)).get_table_names() == []  # nothing was created


def test_on_sqlite_the_embedded_default_upgrades_itself_on_first_use(tmp_path):
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    assert DecisionLog(url).count() == 0
    assert migrations.state(url, "decisions").is_current


def test_on_postgresql_a_migration_gives_up_rather_than_hold_up_the_logs_writers(empty_postgres_url):
    """ALTER TABLE waits for every open transaction on the table and queues all writes behind it: bounded."""
    from sqlalchemy.exc import OperationalError

    from governance.migrations import env

    url = empty_postgres_url
    _load_premigration_schema(dict.fromkeys(migrations.SCHEMAS, url))
    engine = engine_for(url)
    with engine.connect() as reader, reader.begin():
        reader.execute(text("SELECT count(*) FROM decisions"))  # an old worker's transaction, still open
        original, env.LOCK_TIMEOUT = env.LOCK_TIMEOUT, "200ms"
        try:
            with pytest.raises(OperationalError, match="lock timeout"):
                migrations.upgrade(url, "decisions")
        finally:
            env.LOCK_TIMEOUT = original
    assert migrations.state(url, "decisions").current is None  # rolled back whole
    migrations.upgrade(url, "decisions")  # once the reader is done, the upgrade goes through
    assert DecisionLog(url).count() == 0
