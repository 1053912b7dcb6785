"""Audit ledger: appends, verify and proofs, side by side with plain SHA-256 of the same bytes.

Run by hand (about two minutes, and 0.7 GB of temporary disk at 1M entries):

    .venv/bin/python bench/ledger.py [--entries 1000000] [--dir DIR]

Baseline for each figure: SHA-256 of exactly the bytes that operation hashes, in memory
(the physical floor). Goals (issue 3, SQLite): >= 500 durable single appends/s, verify of
1M entries <= 3 s, an inclusion proof < 10 ms at 1M entries.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from hashlib import sha256
from pathlib import Path

from governance import events
from governance.digests import canonical_json
from governance.ledger import Ledger
from governance.ledger.records import entry_content, record_bytes

BATCH = 10_000
# Typical governance actions, appended as raw records: this measures the store, not the events' checks.
ACTIONS = [
    kind.action
    for kind in (
        events.DataSnapshotted,
        events.DataValidated,
        events.ModelRegistered,
        events.GateDecided,
        events.ApprovalGranted,
    )
]


def event(i: int) -> dict:
    """A typical governance event: subject, two digests, a small payload of facts."""
    return {
        "actor": "system:release_gate",
        "action": ACTIONS[i % len(ACTIONS)],
        "subject": {"model": "credit_default", "version": str(1 + i // 1000)},
        "digests": {"evidence": sha256(b"e%d" % i).hexdigest(), "policy": sha256(b"p%d" % (i % 7)).hexdigest()},
        "payload": {"decision": "pass" if i % 9 else "block", "auc": 0.8123, "reasons": ["auc >= 0.75"]},
    }


def record_and_payload(entry) -> list[bytes]:
    """The bytes an append or verify hashes for one entry: its record and its payload."""
    record = record_bytes(entry_content(entry.to_dict()), entry.payload_digest, entry.prev_hash, entry.seq)
    return [record, canonical_json(entry.payload)]


def stored_bytes(path: Path) -> list[bytes]:
    """Every entry's content and payload exactly as stored (what verify reads and hashes)."""
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT CAST(content AS BLOB), CAST(payload AS BLOB) FROM ledger_entries ORDER BY seq")
        return [value for row in rows for value in row]


def hash_all(chunks: list[bytes]) -> float:
    started = time.perf_counter()
    for chunk in chunks:
        sha256(chunk).digest()
    return time.perf_counter() - started


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


class Table:
    """Rows of (figure, baseline in the same unit, how many times the floor it costs)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        baseline: float,
        *,
        rate: bool = False,
        goal: str = "",
        met: bool | None = None,
    ) -> None:
        cost = baseline / value if rate else value / baseline
        self.rows.append(
            {
                "measure": name,
                "value": value,
                "unit": unit,
                "baseline": baseline,
                "times_the_floor": cost,
                "goal": goal,
                "met": met,
            }
        )
        verdict = "" if met is None else ("met" if met else "MISSED")
        print(f"{name:<42} {value:>13,.3f} {baseline:>15,.3f} {unit:<10} {cost:>8,.1f}x  {goal} {verdict}", flush=True)


def bench_appends(ledger: Ledger, table: Table, durable: int) -> None:
    seconds, entries = timed(lambda: [ledger.append_record(**event(i)) for i in range(durable)])
    floor = hash_all([chunk for entry in entries for chunk in record_and_payload(entry)])
    rate = durable / seconds
    table.add(
        "durable single appends (1 txn each)",
        rate,
        "appends/s",
        durable / floor,
        rate=True,
        goal="goal >= 500/s",
        met=rate >= 500,
    )


def grow(ledger: Ledger, table: Table, target: int) -> None:
    """Batched appends up to `target` entries; the baseline hashes the first batch's bytes."""
    start, seconds, floor = ledger.size(), 0.0, None
    for low in range(start, target, BATCH):
        batch = [event(i) for i in range(low, min(low + BATCH, target))]
        took, entries = timed(lambda: ledger.append_records(batch))  # noqa: B023 (called in this iteration)
        seconds += took
        if floor is None:
            floor = len(entries) / hash_all([chunk for entry in entries for chunk in record_and_payload(entry)])
    table.add(
        f"batched appends ({BATCH:,}/txn) to {target:,}", (target - start) / seconds, "appends/s", floor, rate=True
    )


def bench_verify(ledger: Ledger, path: Path, table: Table, goal: bool) -> None:
    size = ledger.size()
    floor = hash_all(stored_bytes(path))
    runs = []
    for _ in range(3):
        seconds, report = timed(ledger.verify)
        assert report.ok and report.size == size, report
        runs.append(seconds)
    median = statistics.median(runs)
    table.add(
        f"verify {size:,} entries (median of 3)",
        median,
        "s",
        floor,
        goal="goal <= 3 s" if goal else "",
        met=median <= 3 if goal else None,
    )
    table.add(f"verify {size:,} entries (best of 3)", min(runs), "s", floor)


def bench_proofs(ledger: Ledger, table: Table) -> None:
    size = ledger.size()
    rng = random.Random(7)
    inclusion = []
    for seq in [rng.randint(1, size) for _ in range(300)]:
        seconds, proof = timed(lambda: ledger.inclusion_proof(seq))  # noqa: B023 (called in this iteration)
        inclusion.append((seconds, proof))
    consistency = []
    for old in [rng.randint(1, size) for _ in range(100)]:
        seconds, proof = timed(lambda: ledger.consistency_proof(old))  # noqa: B023 (called in this iteration)
        consistency.append((seconds, proof))
    assert all(proof.verify() for _, proof in inclusion + consistency)
    inclusion_floor = statistics.mean(
        hash_all([b"\x00" + bytes.fromhex(p.entry_hash)] + [b"\x01" + bytes.fromhex(h) * 2 for h in p.path])
        for _, p in inclusion
    )
    consistency_floor = statistics.mean(
        hash_all([b"\x01" + bytes.fromhex(h) * 2 for h in p.path * 2]) for _, p in consistency
    )
    times = sorted(seconds for seconds, _ in inclusion)
    p99 = times[int(len(times) * 0.99) - 1]
    table.add(f"inclusion proof at {size:,} (mean)", statistics.mean(times) * 1e3, "ms", inclusion_floor * 1e3)
    table.add(
        f"inclusion proof at {size:,} (p99)",
        p99 * 1e3,
        "ms",
        inclusion_floor * 1e3,
        goal="goal < 10 ms",
        met=p99 < 0.010,
    )
    table.add(
        f"consistency proof to {size:,} (mean)",
        statistics.mean(s for s, _ in consistency) * 1e3,
        "ms",
        consistency_floor * 1e3,
    )
    checked = [timed(proof.verify)[0] for _, proof in inclusion[:100]]
    table.add("  verifying an inclusion proof (pure)", statistics.mean(checked) * 1e3, "ms", inclusion_floor * 1e3)


def run(path: Path, entries: int, durable: int) -> None:
    ledger = Ledger(f"sqlite:///{path}")
    table = Table()
    print(f"SQLite ledger at {path} (WAL, synchronous=FULL); baseline = SHA-256 of the same bytes, in memory")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start (other work skews every figure)\n")
    print(f"{'measure':<42} {'value':>13} {'SHA-256 floor':>15} {'unit':<10} {'ratio':>9}")
    bench_appends(ledger, table, durable)
    middle = min(100_000, entries)
    grow(ledger, table, middle)
    bench_verify(ledger, path, table, goal=False)
    if entries > middle:
        grow(ledger, table, entries)
        bench_verify(ledger, path, table, goal=entries >= 1_000_000)
    bench_proofs(ledger, table)
    print(
        f"\ndatabase: {path.stat().st_size / 1e6:,.0f} MB for {ledger.size():,} entries; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "ledger.json").write_text(json.dumps(table.rows, indent=2))
    missed = [row["measure"] for row in table.rows if row["met"] is False]
    print("all goals met" if not missed else f"goals missed: {', '.join(missed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--durable", type=int, default=2_000, help="single appends to time")
    parser.add_argument("--dir", type=Path, help="build and keep the ledger here (default: a temporary directory)")
    args = parser.parse_args()
    if args.dir is None:
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as workdir:
            run(Path(workdir) / "governance.db", args.entries, args.durable)
    elif (args.dir / "governance.db").exists():
        sys.exit(f"{args.dir / 'governance.db'} exists; give an empty --dir")
    else:
        run(args.dir / "governance.db", args.entries, args.durable)


if __name__ == "__main__":
    main()
