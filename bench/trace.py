"""`govern trace` and `govern evidence` at scale, side by side with baselines measured in the same run.

Builds the governed history of tests/lineage/world.py (two versions through the real
graph, signed approvals, deployments, decisions served by the scoring API, a signed
rollback, the kill switch), then pads the decision log to --decisions rows and the
ledger with --ledger-entries entries about another model, and measures:

  trace, in process      median over random decisions; baselines: the same trace before the
                         padding (how it scales with the log) and the decision lookup alone
  trace, new process     what `govern trace` does, in a fresh Python; baseline: importing the CLI
  evidence export        median of 3; baseline: zipping the very same files with zipfile alone
  evidence verify        median of 3; baseline: SHA-256 of every file of the pack

Goals (issue 7): trace < 1 s with 1,000,000 decisions in the log; an evidence pack < 10 s.
Run by hand (about two minutes and 1 GB of temporary disk at the defaults):

    .venv/bin/python bench/trace.py [--decisions 1000000] [--ledger-entries 100000]
                                    [--database-url postgresql://...] [--dir DIR]
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench.history builds the history

from bench.history import arguments, history, pad_decisions, pad_ledger  # noqa: E402
from governance.decisions import DecisionLog  # noqa: E402
from governance.lineage.pack import export_evidence  # noqa: E402
from governance.lineage.trace import trace_decision  # noqa: E402
from governance.lineage.verify import verify_pack  # noqa: E402
from tests.lineage.world import MODEL, V1, World  # noqa: E402

PROCESS_SCRIPT = """
import json, sys
from governance.settings import Settings, apply_offline_env
apply_offline_env()
from governance.decisions import DecisionLog
from governance.lineage.trace import trace_decision
from governance.release.services import Services
settings = Settings.from_env()
print(json.dumps(trace_decision(Services(settings), DecisionLog.for_settings(settings), sys.argv[1]), default=str))
"""


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def median_of(runs: int, action) -> float:
    return statistics.median(timed(action)[0] for _ in range(runs))


def row(name: str, value: float, baseline: float, baseline_name: str, goal: str = "", met: bool | None = None) -> None:
    verdict = "" if met is None else ("met" if met else "MISSED")
    print(
        f"{name:<44} {value * 1000:>10,.1f} ms  vs {baseline * 1000:>9,.1f} ms {baseline_name:<34} "
        f"{value / baseline:>7,.1f}x  {goal} {verdict}",
        flush=True,
    )


def bench_trace(world: World, ids: list[str], runs: int) -> tuple[float, float]:
    services, log = world.services, DecisionLog.for_settings(world.settings)
    trace_decision(services, log, ids[0])  # warm: connections opened, statements prepared
    rng = random.Random(11)
    chosen = [rng.choice(ids) for _ in range(runs)]
    trace = statistics.median(timed(lambda i=i: trace_decision(services, log, i))[0] for i in chosen)
    lookup = statistics.median(timed(lambda i=i: log.get(i))[0] for i in chosen)
    return trace, lookup


def bench_process(world: World, decision_id: str) -> tuple[float, float]:
    env = {
        **os.environ,
        "GOVERN_HOME": str(world.settings.home),
        "GOVERN_CONFIG": str(world.settings.config_path),
        "GOVERN_POLICIES": str(world.settings.policies_dir),
        "GOVERN_DATABASE_URL": world.settings.database_url or "",
        "GOVERN_ROSTER": str(world.settings.roster_override or ""),
    }
    python = sys.executable
    cli = median_of(3, lambda: subprocess.run([python, "-c", "import governance.cli"], env=env, check=True))
    traced = median_of(
        3, lambda: subprocess.run([python, "-c", PROCESS_SCRIPT, decision_id], env=env, check=True, capture_output=True)
    )
    return traced, cli


def bench_evidence(world: World, out_dir: Path) -> None:
    out = out_dir / "pack.zip"
    export = median_of(3, lambda: export_evidence(world.services, MODEL, V1, out))
    with zipfile.ZipFile(out) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}

    def plain_zip() -> None:
        with zipfile.ZipFile(io.BytesIO(), "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)

    size = world.services.ledger.size()
    row(
        f"evidence export (ledger of {size:,} entries)",
        export,
        median_of(3, plain_zip),
        "zipping the same files",
        "goal < 10 s",
        export < 10,
    )
    verify = median_of(3, lambda: verify_pack(out))
    assert verify_pack(out).ok
    row(
        "evidence verify (offline)",
        verify,
        median_of(3, lambda: [hashlib.sha256(d).digest() for d in files.values()]),
        "SHA-256 of every file",
    )


def main() -> None:
    args = arguments(__doc__, runs=100)
    with history(args) as (world, tmp):
        few = [a["decision_id"] for answers in world.decisions.values() for a in answers if a["version"]]
        small_trace, _ = bench_trace(world, few, args.runs)
        started = time.perf_counter()
        ids = pad_decisions(world, args.decisions)
        count = DecisionLog.for_settings(world.settings).count()
        print(f"decision log padded to {count:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
        trace, lookup = bench_trace(world, ids, args.runs)
        row(
            f"trace, in process ({count:,} decisions)",
            trace,
            small_trace,
            f"same, {len(few)} decisions",
            "goal < 1 s",
            trace < 1,
        )
        row(f"trace, in process ({count:,} decisions)", trace, lookup, "decision lookup alone")
        pad_ledger(world, args.ledger_entries)
        size = world.services.ledger.size()
        wide, _ = bench_trace(world, ids, args.runs)
        row(
            f"trace, in process (+ ledger of {size:,})",
            wide,
            trace,
            f"same, ledger of {size - args.ledger_entries}",
            "goal < 1 s",
            wide < 1,
        )
        process, cli = bench_process(world, ids[0])
        row("trace, new process", process, cli, "importing the govern CLI")
        bench_evidence(world, tmp)


if __name__ == "__main__":
    main()
