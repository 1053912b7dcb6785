"""Scale: 1, 10 and 50 governed models from config alone (small data), side by side.

    .venv/bin/python bench/scale.py [--models 1 10 50] [--windows]

Per model count, in a fresh state dir (embedded default):
- definitions load: `build_definitions` in a fresh process (imports excluded), and that process's peak RSS
  (the code location's memory);
- `govern status --json`: wall time of the command in a fresh process (imports included: what a dashboard
  waits for);
- sensors and schedules the daemon evaluates;
- an idle monitoring tick: one evaluation of each fleet sensor (no new window), the cost each daemon loop pays;
  sensor evaluations a minute that one daemon loop of these costs allows.
With --windows, also one deployed champion per model and one new window for each, and the data-drift tick
judging every model's window (the cost of a tick when every model has a new window at once).
Baseline, measured in the same run: the one-model figures; ratios are against them.
Not measured here: time from a harmful window to containment with the daemon at 50 models (bench/mttr.py
measures it for one model); see docs/operations.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

LOAD = """
import json, resource, sys, time
from governance.settings import Settings
from governance.config import load_config
from definitions import build_definitions
settings = Settings(home=__import__('pathlib').Path(sys.argv[1]), config_path=__import__('pathlib').Path(sys.argv[2]))
started = time.perf_counter()
defs = build_definitions(settings, load_config(settings.config_path))
repo = defs.get_repository_def()
took = time.perf_counter() - started
print(json.dumps({"load_s": took, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "sensors": len(repo.sensor_defs), "schedules": len(repo.schedule_defs), "jobs": len(repo.get_all_jobs())}))
"""


def config(path: Path, count: int) -> Path:
    entry = yaml.safe_load((REPO / "tests" / "configs" / "small.yaml").read_text())["models"]["credit_scoring"]
    entry = {**entry, "monitoring": {"collect_protected_attributes": True, "window_size": 100, "min_window_size": 50,
                                     "check_interval_seconds": 5}}  # fmt: skip
    path.write_text(yaml.safe_dump({"models": {f"model_{i:02d}": entry for i in range(count)}}, sort_keys=False))
    return path


def measure(root: Path, count: int, windows: bool) -> dict:
    from governance.config import load_config
    from governance.settings import Settings
    from governance.trust.demo import demo_principals
    from programs.instance import create_databases

    root.mkdir(parents=True)
    settings = Settings(home=root / "govern", config_path=config(root / "governance.yaml", count),
                        policies_override=REPO / "policies")  # fmt: skip
    demo_principals(settings)
    create_databases(settings)  # MLflow's and Dagster's first migrations are not what a dashboard waits for
    python = sys.executable
    loaded = json.loads(subprocess.run([python, "-c", LOAD, str(settings.home), str(settings.config_path)],
                                       check=True, capture_output=True, text=True, cwd=REPO).stdout.splitlines()[-1])  # fmt: skip
    govern = [str(Path(python).parent / "govern"), "--home", str(settings.home), "--config", str(settings.config_path)]
    env = {"GOVERN_POLICIES": str(REPO / "policies"), "PATH": str(Path(python).parent)}
    started = time.perf_counter()
    subprocess.run([*govern, "status", "--json"], check=True, capture_output=True, env=env)
    figures = {**loaded, "status_s": time.perf_counter() - started}
    figures["idle_tick_s"] = idle_tick(settings, load_config(settings.config_path))
    if windows:
        figures["window_tick_s"] = window_tick(settings, load_config(settings.config_path))
    return figures


def tick(settings, defs, instance, sensor: str, cursor: str | None) -> tuple[float, str | None]:
    import dagster as dg

    from resources import governance_resources

    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=governance_resources(settings)) as context:
        started = time.perf_counter()
        result = defs.resolve_sensor_def(sensor)(context)
        return time.perf_counter() - started, result.cursor


def idle_tick(settings, config) -> float:
    """One evaluation of every fleet sensor with nothing new (after a first, warming one)."""
    from definitions import build_definitions
    from programs.instance import open_instance

    defs, instance = build_definitions(settings, config), open_instance(settings)
    sensors = [s.name for s in defs.sensors if s.name.startswith("monitoring_") or s.name == "retraining_requests"]
    cursors = {name: tick(settings, defs, instance, name, None)[1] for name in sensors}
    return sum(tick(settings, defs, instance, name, cursors[name])[0] for name in sensors)


def window_tick(settings, config) -> float:
    """Every model with a champion and one new window: one data-drift tick judging them all (references warm)."""
    from definitions import build_definitions
    from governance.monitoring.monitor import monitor_for
    from governance.monitoring.traffic import Traffic
    from programs.instance import open_instance
    from tests.monitoring.support import deploy_trained, train

    models = list(config.models.values())
    frame, pipeline = train(models[0], seed=7, rows=2000)
    for model in models:
        version = deploy_trained(settings, model, frame, pipeline, "bench")
        Traffic(settings, model).send(100, seed=11)
        monitor_for(settings, record=False).references.get(model, version)  # the sensors' own
    defs, instance = build_definitions(settings, config), open_instance(settings)
    return tick(settings, defs, instance, "monitoring_data_drift", None)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--windows", action="store_true")
    args = parser.parse_args()
    from governance.settings import apply_offline_env

    apply_offline_env()
    header = (f"{'models':>6} {'load s':>8} {'x':>6} {'RSS MB':>7} {'sensors':>7} {'sched':>5} {'status s':>8} {'x':>6} "
              f"{'idle tick s':>11} {'evals/min':>9}" + (f" {'window tick s':>13}" if args.windows else ""))  # fmt: skip
    base: dict | None = None
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.models:
            r = measure(Path(tmp) / f"m{count}", count, args.windows)
            base = base or r  # the first (smallest) count is the baseline
            evals = 60 * 5 / r["idle_tick_s"]  # five fleet sensors per idle tick
            line = (f"{count:>6} {r['load_s']:>8.2f} {r['load_s'] / base['load_s']:>6.1f} {r['rss_mb']:>7.0f} "
                    f"{r['sensors']:>7} {r['schedules']:>5} {r['status_s']:>8.2f} {r['status_s'] / base['status_s']:>6.1f} "
                    f"{r['idle_tick_s']:>11.2f} {evals:>9.0f}")  # fmt: skip
            print(line + (f" {r['window_tick_s']:>13.2f}" if args.windows else ""), flush=True)
    print("\nevals/min: fleet sensor evaluations a minute if the daemon did nothing but idle ticks (5 sensors).")
    print("goals at 50: load < 10 s, status --json < 3 s, a monitoring tick for all models < the 5 s interval.")


if __name__ == "__main__":
    main()
