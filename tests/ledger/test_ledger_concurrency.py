"""Two OS processes appending at once: no fork of the chain, no lost entry."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ledger_support import sqlite_url

from governance.ledger import Ledger

# Each writer opens the ledger, says it is ready, waits for the go signal, appends one
# entry per transaction (durable single appends, the contended path) and prints when it
# started and finished appending.
WRITER = """
import sys, time
from pathlib import Path
from governance.ledger import Ledger

url, name, count, ready, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
ledger = Ledger(url)
ready.touch()
while not go.exists():
    time.sleep(0.001)
started = time.time()
for i in range(count):
    ledger.append_record(actor=f"system:{name}", action="test.append", subject={"model": "concurrency"},
                  payload={"writer": name, "i": i})
print(started, time.time())
"""


def run_writers(url: str, count: int, workdir: Path) -> None:
    """Run two writers at once; fail unless both succeed and their appending overlapped in time."""
    go = workdir / "go"
    writers = {}
    for name in ("a", "b"):
        ready = workdir / f"ready-{name}"
        writers[name] = (
            ready,
            subprocess.Popen(
                [sys.executable, "-c", WRITER, url, name, str(count), str(ready), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in writers.values()):
        assert time.monotonic() < deadline, "writers did not start"
        assert all(process.poll() is None for _, process in writers.values()), "a writer died while starting"
        time.sleep(0.01)
    go.touch()
    spans = {}
    for name, (_, process) in writers.items():
        output, errors = process.communicate(timeout=120)
        assert process.returncode == 0, f"writer {name} failed:\n{errors}"
        started, finished = map(float, output.split())
        spans[name] = (started, finished)
    assert max(s for s, _ in spans.values()) < min(f for _, f in spans.values()), f"writers did not overlap: {spans}"


def assert_all_entries_and_one_chain(ledger: Ledger, count: int) -> None:
    entries = ledger.entries()
    assert [e.seq for e in entries] == list(range(1, 2 * count + 1))
    written = {(e.payload["writer"], e.payload["i"]) for e in entries}
    assert written == {(name, i) for name in ("a", "b") for i in range(count)}
    assert all(later.prev_hash == earlier.entry_hash for earlier, later in zip(entries, entries[1:]))
    report = ledger.verify()
    assert report.ok and report.size == 2 * count, report


def test_two_processes_append_1000_entries_each_to_sqlite(tmp_path):
    url = sqlite_url(tmp_path / "governance.db")
    Ledger(url)
    run_writers(url, 1000, tmp_path)
    assert_all_entries_and_one_chain(Ledger(url), 1000)


def test_two_processes_append_at_once_to_postgresql(postgres_url, tmp_path):
    Ledger(postgres_url)
    run_writers(postgres_url, 200, tmp_path)
    assert_all_entries_and_one_chain(Ledger(postgres_url), 200)
