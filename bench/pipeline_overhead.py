"""What governance costs: the whole governed graph against a bare training script, side by side.

For each size, in this one process: the bare script (generate the data, split,
fit the same estimator, score the test set) and the governed candidate run
through Dagster (DVC snapshot, Great Expectations, MLflow run and registration,
performance, fairness with bootstrap intervals, SHAP, model card, Cedar gate,
sealed evidence pack and approval request, every step in the ledger). Prints
each time, the ratio, and the governed run's slowest steps. The governed run
goes twice per size: the first run in the process pays what a fresh run process
pays (importing Great Expectations, SHAP, MLflow, DVC on first use; later sizes
find them imported), the second shows the warm cost. The goal is judged on the
first.

    .venv/bin/python bench/pipeline_overhead.py [--rows 100000 1000000]

Goal (issue 2): at most 1.5x the bare training at 1M rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dagster as dg
import yaml

from governance import state, training
from governance.config import load_config
from governance.data.generator import generate_applications
from governance.registry import ModelRegistry
from governance.settings import Settings, apply_offline_env
from governance_assets.definitions import build_definitions
from jobs.candidates import run_candidate

REPO = Path(__file__).resolve().parents[1]
GOAL = 1.5


def bare(model, rows: int) -> float:
    start = time.perf_counter()
    frame = generate_applications(rows, seed=model.source.generator.seed)
    split = training.split(model, frame)
    pipeline = training.fit(model, split.train)
    training.score(pipeline, model, split.test)
    return time.perf_counter() - start


def governed(config_path: Path, home: Path) -> tuple[float, dict[str, float]]:
    settings = Settings(home=home, config_path=config_path, policies_override=REPO / "policies")
    state.prepare(settings)
    config = load_config(config_path)
    registry = ModelRegistry.for_settings(settings)  # creates the new state dir's MLflow database: setup, not a run
    with dg.instance_for_test() as instance:
        start = time.perf_counter()
        _, result = run_candidate(build_definitions(settings, config), instance, registry,
                                  config.model("credit_scoring"))
        elapsed = time.perf_counter() - start
        failures = [e.step_key for e in result.all_events if e.is_step_failure]
        # A denied gate is a governed outcome (it skips only the sealing step); anything else is a broken run.
        assert set(failures) <= {"credit_scoring__release_gate"}, f"governed run failed at {failures}"
        steps = {e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.all_events
                 if e.event_type_value == "STEP_SUCCESS"}
    return elapsed, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    apply_offline_env()
    raw = yaml.safe_load((REPO / "governance.yaml").read_text())
    print(f"{'rows':>10} {'bare s':>8} {'governed s':>11} {'ratio':>6} {'again s':>7} {'ratio':>6}  "
          f"goal <= {GOAL}x at 1M")
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="govern-bench-") as tmp:
            raw["models"]["credit_scoring"]["source"]["generator"]["rows"] = rows
            config = Path(tmp) / "governance.yaml"
            config.write_text(yaml.safe_dump(raw))
            model = load_config(config).model("credit_scoring")
            bare(model, 10_000)  # warm the bare script's own imports and caches
            bare_s = bare(model, rows)
            governed_s, steps = governed(config, Path(tmp) / "govern")
            warm_s, _ = governed(config, Path(tmp) / "govern-warm")
        ratio = governed_s / bare_s
        verdict = "" if rows < 1_000_000 else ("  meets goal" if ratio <= GOAL else "  MISSES goal")
        print(f"{rows:>10,} {bare_s:>8.2f} {governed_s:>11.2f} {ratio:>5.2f}x {warm_s:>7.2f} {warm_s / bare_s:>5.2f}x"
              f"{verdict}")
        slowest = sorted(steps.items(), key=lambda kv: -kv[1])[:6]
        print("           slowest steps: " + ", ".join(f"{k.split('__')[-1]} {v:.1f}s" for k, v in slowest))


if __name__ == "__main__":
    main()
