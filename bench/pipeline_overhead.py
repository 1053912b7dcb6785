"""What governance costs: the whole governed graph against a bare training script, side by side.

The bare script generates the data, splits it, fits the same estimator and scores the test set. The
governed candidate runs through Dagster: DVC snapshot, Great Expectations, MLflow run and registration,
performance, fairness with bootstrap intervals, SHAP, model card, Cedar gate, sealed evidence pack and
approval request, every step in the ledger.

For each size, in this one process, bare and governed runs alternate `--repeat` times after one warm-up
of each (what the first warm-ups imported is then kept out of garbage collections, as a run process does
with what it imported when it loaded the code location); the medians and their ratio are the per-run
cost of governance. The machine is shared, so the
ranges are printed too. Then, once at the largest size, each side runs as a fresh process, timed from
its start to the end of its run: the bare script pays its own imports (pandas, scikit-learn), the
governed run its own (Dagster, the code location and, on first use, Great Expectations, SHAP, skops,
DVC), as a run process launched from the UI or the daemon does. The goal is judged on both at 1M rows.

    .venv/bin/python bench/pipeline_overhead.py [--rows 100000 1000000] [--repeat 3]

Goal (issue 2): at most 1.5x the bare training at 1M rows.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bare_training import bare

from definitions import build_definitions
from governance.config import load_config
from governance.registry import ModelRegistry
from governance.settings import Settings, apply_offline_env
from jobs import QUIET
from jobs.candidates import run_candidate
from programs.instance import create_databases, open_instance
from speedups import spare_the_collector

REPO = Path(__file__).resolve().parents[1]
GOAL = 1.5


def governed(config_path: Path, home: Path) -> tuple[float, dict[str, float]]:
    """One candidate run through Dagster on the state dir `home`, as `govern demo` runs it (every event in the
    instance's event log; Dagster's console logger quiet, so the benchmark prints figures, not run logs)."""
    settings = _settings(config_path, home)
    config = load_config(config_path)
    registry = ModelRegistry.for_settings(settings)
    with open_instance(settings) as instance:
        start = time.perf_counter()
        _, result = run_candidate(
            build_definitions(settings, config), instance, registry, config.model("credit_scoring"), run_config=QUIET
        )
        elapsed = time.perf_counter() - start
    failures = [e.step_key for e in result.all_events if e.is_step_failure]
    # A denied gate is a governed outcome (it skips only the sealing step); anything else is a broken run.
    assert set(failures) <= {"credit_scoring__release_gate"}, f"governed run failed at {failures}"
    steps = {
        e.step_key: e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    }
    return elapsed, steps


def prepared(config_path: Path, home: Path) -> Path:
    """A new state dir with its databases created (setup a deployment has done before any run)."""
    create_databases(_settings(config_path, home))
    return home


def fresh_process(command: list[str]) -> float:
    """Seconds from starting a new Python process to the end of its run (its last line, `finished <epoch>`;
    a Dagster run is over then, whatever the interpreter's shutdown costs afterwards)."""
    start = time.time()
    out = subprocess.run([sys.executable, *command], check=True, capture_output=True, text=True, cwd=REPO).stdout
    return float(out.split()[-1]) - start


def _settings(config_path: Path, home: Path) -> Settings:
    return Settings(home=home, config_path=config_path, policies_override=REPO / "policies")


def _config(tmp: Path, raw: dict, rows: int) -> Path:
    raw["models"]["credit_scoring"]["source"]["generator"]["rows"] = rows
    config = tmp / f"governance-{rows}.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="bare/governed pairs per size (medians)")
    parser.add_argument("--fresh", nargs=2, metavar=("CONFIG", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    apply_offline_env()
    if args.fresh:  # the governed side of the fresh-process comparison
        spare_the_collector()  # as a run process does when it loads the code location
        governed(Path(args.fresh[0]), Path(args.fresh[1]))
        print(f"finished {time.time()}")
        return
    raw = yaml.safe_load((REPO / "governance.yaml").read_text())
    print(
        f"{'rows':>10}  {'bare s, median (range)':>24}  {'governed s, median (range)':>26}  {'ratio':>6}  "
        f"goal <= {GOAL}x at 1M"
    )
    with tempfile.TemporaryDirectory(prefix="govern-bench-") as tmp:
        for rows in args.rows:
            config = _config(Path(tmp), raw, rows)
            model = load_config(config).model("credit_scoring")
            homes = [prepared(config, Path(tmp) / f"govern-{rows}-{i}") for i in range(args.repeat + 1)]
            bare(model, 10_000)  # warm-ups: the bare script's imports and caches,
            governed(config, homes[0])  # and the governed run's (at the first size, a fresh process's imports)
            if rows == args.rows[0]:  # what the warm-ups imported is frozen, as a run process freezes its imports
                spare_the_collector()
            bare_s, governed_s = [], []
            for i, home in enumerate(homes[1:]):  # alternating which goes first
                if i % 2:
                    governed_s.append(governed(config, home))
                bare_s.append(bare(model, rows))
                if not i % 2:
                    governed_s.append(governed(config, home))
            times = [t for t, _ in governed_s]
            ratio = statistics.median(times) / statistics.median(bare_s)
            print(f"{rows:>10,}  {_spread(bare_s):>24}  {_spread(times):>26}  {ratio:>5.2f}x{_verdict(rows, ratio)}")
            _, steps = sorted(governed_s, key=lambda run: run[0])[len(times) // 2]
            slowest = sorted(steps.items(), key=lambda kv: -kv[1])[:6]
            print(
                f"{'':>10}  the median governed run's slowest steps: "
                + ", ".join(f"{k.split('__')[-1]} {v:.1f}s" for k, v in slowest)
            )
        rows = max(args.rows)
        config = _config(Path(tmp), raw, rows)
        bare_fresh = fresh_process(["bench/bare_training.py", str(config)])
        home = prepared(config, Path(tmp) / "govern-fresh")
        governed_fresh = fresh_process([__file__, "--fresh", str(config), str(home)])
        ratio = governed_fresh / bare_fresh
        print(
            f"{rows:>10,}  fresh processes: bare {bare_fresh:.2f} s, governed {governed_fresh:.2f} s: "
            f"{ratio:.2f}x{_verdict(rows, ratio)}"
        )


def _verdict(rows: int, ratio: float) -> str:
    return "" if rows < 1_000_000 else ("  meets goal" if ratio <= GOAL else "  MISSES goal")


if __name__ == "__main__":
    main()
