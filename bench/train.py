"""What `govern train` adds to the candidate run it launches, and how fast `govern config check` answers.

Both sides are fresh processes on the same state dir and config (the demo model, 50,000 generated rows),
timed from their start to their exit, alternating `--repeat` times:

- bare: the candidate run launched as the UI's run worker or `dagster asset materialize` would, in a
  fresh interpreter: import the code location, open the state dir's instance, add the next partition,
  execute the candidate job (no request, no outcome);
- `govern train credit_scoring --as dana`: the CLI, the signed request (statement store, Cedar, ledger),
  the same run with progress lines, the gate's outcome and the next command.

The difference of the medians is what `govern train` adds; its parts are shown as measured in the same
run: the `govern` CLI's own start (`govern train --help`, paid before the run process starts) and the
signed request (`request_candidate`, timed in process). `govern config check` is timed against loading
the same config through the library in a fresh interpreter.

    .venv/bin/python bench/train.py [--repeat 2] [--checks 5]

Goals (issue 22): `govern train` adds at most 1 s to the run; `govern config check` answers in under 2 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONFIG = REPO / "governance.yaml"
TRAIN_GOAL_S, CHECK_GOAL_S = 1.0, 2.0
BARE = """
import os
from governance.config import load_config
from governance.registry import ModelRegistry
from governance.settings import Settings, apply_offline_env
from definitions import build_definitions
from programs.instance import open_instance
from jobs import QUIET
from jobs.candidates import run_candidate

apply_offline_env()
settings = Settings.from_env()
config = load_config(settings.config_path)
with open_instance(settings) as instance:
    key, result = run_candidate(
        build_definitions(settings, config), instance, ModelRegistry.for_settings(settings),
        config.model("credit_scoring"), run_config=QUIET,
    )
print(key, result.success, flush=True)
os._exit(0)  # as `programs.train` leaves: no heap teardown on either side
"""
LOAD = "from governance.config import load_config; load_config({!r})"
REQUEST = """
import time
from governance.release.requests import request_candidate
from governance.release.services import Services
from governance.settings import Settings
from governance.trust.keys import load_private_key
services = Services(Settings.from_env())
services.ledger, services.statements, services.policies, services.roster  # opened, as in `programs.train`
start = time.perf_counter()
request_candidate(services, "credit_scoring", "credit_scoring-v999", "dana", load_private_key({key!r}))
print(time.perf_counter() - start)
"""


def timed(command: list[str], env: dict[str, str], cpu: list[float] | None = None) -> float:
    """Wall seconds of a fresh process; its CPU seconds (user + system) go to `cpu`: on a machine shared with
    other work, CPU time is what an idle machine's wall time would be for single-threaded start-up work."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1) or "Traceback" in done.stderr:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def prepare(home: Path) -> tuple[dict[str, str], Path]:
    """A state dir for the demo config with the demo cast; the environment every process gets, dana's key."""
    env = {
        **os.environ,
        "GOVERN_HOME": str(home),
        "GOVERN_CONFIG": str(CONFIG),
        "GOVERN_POLICIES": str(REPO / "policies"),
        "DAGSTER_HOME": str(home / "dagster"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    setup = (
        "from governance.settings import Settings; from governance.trust.demo import demo_principals; "
        "from programs.instance import create_databases; s = Settings.from_env(); "
        "demo_principals(s); create_databases(s)"
    )
    subprocess.run([sys.executable, "-c", setup], env=env, check=True)
    env["GOVERN_ROSTER"] = str(home / "roster.yaml")
    return env, home / "keys" / "dana.key"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--checks", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        env, key = prepare(Path(tmp) / "govern")
        govern = [str(BIN / "govern"), "train", "credit_scoring", "--as", "dana", "--key", str(key)]
        bare, trained = [], []
        for _ in range(args.repeat):
            bare.append(timed([sys.executable, "-c", BARE], env))
            trained.append(timed(govern, env))
        startup_cpu: list[float] = []
        startup = [timed([*govern, "--help"], env, startup_cpu) for _ in range(args.checks)]
        signing = [
            float(
                subprocess.run(
                    [sys.executable, "-c", REQUEST.format(key=str(key))],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for _ in range(3)
        ]
        check_cpu: list[float] = []
        checks = [
            timed([str(BIN / "govern"), "config", "check", str(CONFIG)], env, check_cpu) for _ in range(args.checks)
        ]
        loads = [timed([sys.executable, "-c", LOAD.format(str(CONFIG))], env) for _ in range(args.checks)]
    report(bare, trained, (startup, startup_cpu), signing, (checks, check_cpu), loads)


def report(bare, trained, startup, signing, checks, loads) -> None:
    (startup, startup_cpu), (checks, check_cpu) = startup, checks
    med = statistics.median
    added = med(trained) - med(bare)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work shares the machine)")
    print(f"candidate run, demo model (50,000 rows), fresh processes, {len(bare)} alternating runs each")
    print(f"  bare run process          median {med(bare):7.2f} s  (range {min(bare):.2f}-{max(bare):.2f})")
    print(f"  govern train              median {med(trained):7.2f} s  (range {min(trained):.2f}-{max(trained):.2f})")
    print(
        f"  added by govern train     {added:+7.2f} s  ratio {med(trained) / med(bare):.3f}x  goal <= {TRAIN_GOAL_S} s"
    )
    print(
        f"    govern CLI start        median {med(startup):7.2f} s  cpu {med(startup_cpu):.2f} s (govern train --help)"
    )
    print(f"    signed request          median {med(signing) * 1000:7.1f} ms (statement store, Cedar, ledger)")
    print(
        f"govern config check         median {med(checks):7.2f} s  cpu {med(check_cpu):.2f} s  goal < {CHECK_GOAL_S} s"
    )
    print(f"  load_config, fresh python median {med(loads):7.2f} s  ratio {med(checks) / med(loads):.2f}x")


if __name__ == "__main__":
    main()
