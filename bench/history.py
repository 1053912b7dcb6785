"""The governed history the audit benches measure: tests/lineage/world.py's, built once per run, then padded
to realistic sizes in bulk (a decision log of a million rows, a ledger of a hundred thousand entries).
bench/trace.py and bench/console.py share it."""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.lineage.world builds the history

from sqlalchemy import insert  # noqa: E402

from governance import events  # noqa: E402
from governance.decisions import DecisionLog, decisions  # noqa: E402
from governance.digests import digest_of  # noqa: E402
from governance.lineage.decision_seals import seal_decisions  # noqa: E402
from governance.settings import apply_offline_env  # noqa: E402
from governance.timestamps import utc_now, utc_timestamp  # noqa: E402
from tests.lineage.world import MODEL, World, build_world  # noqa: E402

BATCH = 20_000


def arguments(description: str, runs: int) -> argparse.Namespace:
    """The options both benches take: sizes, the database, where to build, how many runs."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--ledger-entries", type=int, default=100_000)
    parser.add_argument("--database-url", help="governance stores on this (empty) PostgreSQL database")
    parser.add_argument("--dir", type=Path, help="where to build the history (default: a temporary directory)")
    parser.add_argument("--runs", type=int, default=runs)
    return parser.parse_args()


@contextmanager
def history(args: argparse.Namespace) -> Iterator[tuple[World, Path]]:
    """The history built in a temporary directory (removed after), and that directory."""
    apply_offline_env()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        started = time.perf_counter()
        world = build_world(Path(tmp) / "govern", database_url=args.database_url)
        backend = "PostgreSQL" if args.database_url else "SQLite"
        print(f"history built in {time.perf_counter() - started:.0f} s ({backend})", flush=True)
        yield world, Path(tmp)


def pad_decisions(world: World, total: int) -> list[str]:
    """Fill the decision log to `total` rows like the API writes them, sealed into the ledger as the guard seals a
    production log each minute (`seal_decisions`: about 2,000 seals of 500 decisions at a million); returns some
    of the new ids."""
    log = DecisionLog.for_settings(world.settings)
    bodies = [json.dumps(b, separators=(",", ":")) for b in world.sent.values()]
    digests = [digest_of(b) for b in world.sent.values()]  # the inputs' digest, as serving records it
    served = [a for answers in world.decisions.values() for a in answers if a["version"]]
    rng, ids = random.Random(7), []
    for low in range(log.count(), total, BATCH):
        rows = []
        for i in range(low, min(low + BATCH, total)):
            answer = served[i % len(served)]
            rows.append(
                {
                    "decision_id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "ts": answer["ts"],
                    "model": MODEL,
                    "version": answer["version"],
                    "input_digest": digests[i % len(digests)],
                    "features": bodies[i % len(bodies)],
                    "protected": None,
                    "score": answer["score"],
                    "outcome": answer["outcome"],
                    "reasons": json.dumps(answer["reasons"]),
                    "kill_switch": False,
                }
            )
        with log.engine.begin() as conn:
            conn.execute(insert(decisions), rows)
        ids += [r["decision_id"] for r in rows[:: max(1, len(rows) // 20)]]
    started = time.perf_counter()
    sealed = seal_decisions(world.services, log, before=utc_timestamp(utc_now() + timedelta(seconds=1)))
    print(f"{len(sealed)} seals of the padded log in {time.perf_counter() - started:.0f} s", flush=True)
    return ids


def pad_ledger(world: World, entries: int) -> None:
    ledger = world.services.ledger
    for low in range(0, entries, 10_000):
        ledger.append_records(
            [
                {
                    "actor": "system:bench",
                    "action": events.PerformanceReportPublished.action,
                    "subject": {"model": "other_model", "version": f"other_model-v{1 + i // 40}"},
                    "digests": {"report": hashlib.sha256(b"%d" % i).hexdigest()},
                    "payload": {"auc": 0.81, "i": i},
                }
                for i in range(low, min(low + 10_000, entries))
            ]
        )
