"""Monitoring: time to remediate a harmful window (MTTR), and the cost of a sensor tick for 20 governed models.

    .venv/bin/python bench/mttr.py [--trials 6] [--interval 5] [--rows 50000] [--fleet 50] [--models 20]
                                   [--only mttr|ticks|guard]

MTTR. Two versions of the default credit_scoring model (governance.yaml; the
sensors' `check_interval_seconds` set to --interval) are deployed in a
temporary state dir: v1 trained on a shifted population (generator drift=1.0),
then v2 on the baseline. `govern serve` and `dagster-daemon run` run on it.
Trials alternate two harms, one window (500 applications, 16 concurrent
clients over HTTP) each:
- rollback: v2 is champion (released again by people after the previous
  rollback trial) and faces v1's shifted population: severe score drift; v1
  passes on the window, so policy rolls back (automation never restores a
  version a person rolled back away from, so the reset is a release, not a
  rollback);
- kill switch: v2 faces applicants whose recorded incomes and credit use are
  biased against women: disparate impact; v1 does not pass, so kill switch.
MTTR is the time from the window's last decision being logged to the API
(GET /models/credit_scoring, polled every 50 ms) reporting the rolled-back
version or the safe state. The ledger gives the alert and the action times.
Baseline, measured in the same run: people acting directly (releasing v2 again
after a rollback trial, and bea's kill switch as `govern disable` does it) to
the API reporting it: what a champion move costs without detection.

MTTR among --fleet models (issue 25). The same trials again, in a new state dir whose config governs
credit_scoring and --fleet - 1 more models (copies of it, model_01 ...), each with a deployed champion; before
every harmful window of credit_scoring, each other model decides a healthy window of its own, in this process
(serving's decision path, one model after another, on the same cores as the daemon and the API), so the fleet
sensors have every model's window to judge around the harmful one (all models busy; some of those windows
are judged before the harmful one exists). Baseline: the one-model median above, measured in the same run.
Goal: at most 1.5x it.

Tick. --models copies of the default model, each with a deployed champion and
one complete, labelled window of decisions; each monitoring sensor is
evaluated as the daemon's code server does (`build_sensor_context` on the
state dir's instance, references already loaded), judging that window on each
of its streams; and once idle (no new window). Baseline: Evidently's whole DataDriftPreset per window, what a
data-drift tick would cost if it produced the report itself.
Goals (issue 6): MTTR median at most 30 s (others claim "under 60 seconds");
a sensor tick for 20 governed models under 2 s.

Guard (issue 24). The same two versions, `govern serve` and `govern guard`
(the fairness guard, polling the decision log every 0.1 s) on a new state dir.
Each trial first sends a random number (0 to one window) of baseline
applications quickly, so harm starts anywhere in the guard's tests, then biased
applications (generator --bias, default 3.0: women approved at about 0.3% against
men's 53%, the magnitude issue 24 saw: 46% to 1.3%) paced at
--rate decisions a second (batches of 10 every 0.1 s), until answers come back
in the safe state or from another version; then people put v2 back. It reports
the harmful decisions served before containment (v2's answers to biased
applications) and the seconds from the first harmful decision to containment. Today's figure
beside it, in the same run: the Dagster daemon runs throughout (its sensors'
cursors keep up), and once the guard is stopped its sensors and remediation
(`--interval`) contain the same paced harm alone. False alarms:
--healthy windows of baseline applications decided through serving's own
decision path (governance.monitoring.traffic) with the guard watching.
Goals: median harmful decisions before containment at most 200 at 100
decisions a second; no containment in 20 healthy windows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from governance import events  # noqa: E402
from governance.config import GovernedModel, load_config  # noqa: E402
from governance.data.generator import generate_applications  # noqa: E402
from governance.decisions import DecisionLog  # noqa: E402
from governance.monitoring.drift import data_drift  # noqa: E402
from governance.monitoring.labels import import_labels  # noqa: E402
from governance.monitoring.monitor import monitor_for  # noqa: E402
from governance.monitoring.traffic import Traffic, applications  # noqa: E402
from governance.monitoring.windows import completed_at  # noqa: E402
from governance.processes import stop_process_groups  # noqa: E402
from governance.release.kill_switch import set_kill_switch  # noqa: E402
from governance.release.services import Services  # noqa: E402
from governance.settings import Settings, apply_offline_env  # noqa: E402
from governance.timestamps import parse_utc  # noqa: E402
from governance.trust.demo import demo_key_path, demo_principals  # noqa: E402
from governance.trust.keys import load_private_key  # noqa: E402
from programs.daemon import DagsterDaemon  # noqa: E402
from sensors.monitoring import monitoring_sensor_name  # noqa: E402
from tests.monitoring.support import deploy_trained, deploy_version, redeploy, train  # noqa: E402

MODEL = "credit_scoring"
GOAL_MEDIAN_S, CLAIM_S, GOAL_TICK_S, GOAL_FLEET_RATIO = 30.0, 60.0, 2.0, 1.5
GOAL_HARMFUL, GUARD_BATCH, HARMFUL_VERSION = 200, 10, 2
CLIENTS, POLL_S, WINDOW_TIMEOUT_S, MAX_WINDOWS = 16, 0.05, 60.0, 4
SENSORS = ("data_drift", "score_drift", "fairness", "performance")


def config_file(path: Path, names: list[str], interval: int, rows: int) -> Path:
    """The default credit_scoring model under each name, its sensors at `interval`, `rows` generated rows."""
    base = yaml.safe_load((REPO / "governance.yaml").read_text())["models"][MODEL]
    entry = {
        **base,
        "monitoring": {**base["monitoring"], "check_interval_seconds": interval},
        "source": {"generator": {**base["source"]["generator"], "rows": rows}},
    }
    path.write_text(yaml.safe_dump({"models": {name: entry for name in names}}, sort_keys=False))
    return path


def state(root: Path, names: list[str], interval: int, rows: int) -> Settings:
    root.mkdir(parents=True)
    settings = Settings(
        home=root / "govern",
        config_path=config_file(root / "governance.yaml", names, interval, rows),
        policies_override=REPO / "policies",
    )
    demo_principals(settings)
    return settings


# --- MTTR --------------------------------------------------------------------------------------


class Api:
    """`govern serve` on a free port, stopped by its own process group."""

    def __init__(self, settings: Settings, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        command = [
            str(Path(sys.executable).parent / "govern"),
            "--home",
            str(settings.home),
            "--config",
            str(settings.config_path),
            "serve",
            "--port",
            str(self.port),
        ]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"govern serve did not start; see {log}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                return True
        except OSError:
            return False

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/models/{MODEL}", timeout=5) as response:
            return json.loads(response.read())

    def wait_until(self, condition, timeout: float = WINDOW_TIMEOUT_S) -> datetime | None:
        """The moment the API's status first satisfies `condition`; None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not condition(self.status()):
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_S)
        return datetime.now(UTC)

    def decide(self, bodies: list[dict]) -> list[dict]:
        """Send every application, CLIENTS at a time; the answers."""

        async def run() -> list[dict]:
            queue, answers = list(enumerate(bodies)), [None] * len(bodies)
            async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:

                async def worker():
                    while queue:
                        index, body = queue.pop()
                        response = await client.post(f"/models/{MODEL}/decisions", json=body)
                        response.raise_for_status()
                        answers[index] = response.json()

                await asyncio.gather(*(worker() for _ in range(CLIENTS)))
            return answers

        return asyncio.run(run())

    def stop(self) -> None:
        stop_process_groups([self.process])
        self.log.close()


def bodies(model: GovernedModel, seed: int, rows: int | None = None, **knobs) -> list[dict]:
    frame = generate_applications(rows or model.monitoring.window_size, seed, **knobs)
    return [{**a.features, **(a.protected or {})} for a in applications(model, frame)]


def measure_mttr(
    root: Path, trials: int, interval: int, rows: int, others: int = 0
) -> tuple[list[dict], list[float], list[float]]:
    """MTTR trials on credit_scoring; with `others`, among that many more governed models, each with a deployed
    champion and a healthy window of its own decided before each harmful one (every sensor judges them all)."""
    fleet = [f"model_{i:02d}" for i in range(1, others + 1)]
    settings = state(root, [MODEL, *fleet], interval, rows)
    config = load_config(settings.config_path)
    model = config.model(MODEL)
    print(f"training and deploying v1 (shifted population) and v2 (baseline), {rows} rows each ...", flush=True)
    deploy_version(settings, model, seed=8, rows=rows, drift=1.0)
    deploy_version(settings, model, seed=7, rows=rows)
    if fleet:
        print(f"deploying {others} other governed models ...", flush=True)
        frame, pipeline = train(config.model(fleet[0]), seed=7, rows=min(rows, 5000))
        for name in fleet:
            deploy_trained(settings, config.model(name), frame, pipeline, "bench")
    background = [Traffic(settings, config.model(name)) for name in fleet]
    services, log = Services(settings), DecisionLog.for_settings(settings)
    bea = load_private_key(demo_key_path(settings, "bea"))
    api = Api(settings, root / "govern-serve.log")
    results, person_rollback, person_kill = [], [], []
    try:
        with DagsterDaemon(settings, root / "daemon.log"):
            for trial in range(trials):
                kind = ("rollback", "kill switch")[trial % 2]
                if kind == "rollback":
                    knobs, done = {"drift": 1.0}, lambda s: s["served_version"] == 1
                else:
                    knobs, done = {"bias": 1.0}, lambda s: s["safe_state"]
                results.append(_trial(api, services, log, model, trial, kind, knobs, done, background))
                print(
                    f"  trial {trial + 1} ({kind}): contained {results[-1]['mttr']:.1f} s after window "
                    f"{results[-1]['window']} was complete",
                    flush=True,
                )
                if kind == "rollback":
                    acted = datetime.now(UTC)
                    redeploy(settings, MODEL, 2)
                    person_rollback.append(_since(acted, api.wait_until(lambda s: s["served_version"] == 2)))
                if kind == "kill switch":
                    acted = datetime.now(UTC)
                    set_kill_switch(services, MODEL, True, "bea", bea, "bench: a person switches off")
                    person_kill.append(_since(acted, api.wait_until(lambda s: s["safe_state"])))
                    set_kill_switch(services, MODEL, False, "bea", bea, "bench: reset")
                    api.wait_until(lambda s: not s["safe_state"])
    finally:
        api.stop()
    return results, person_rollback, person_kill


def _trial(
    api: Api,
    services: Services,
    log: DecisionLog,
    model: GovernedModel,
    trial: int,
    kind: str,
    knobs: dict,
    done,
    background: list[Traffic],
) -> dict:
    """Harmful windows until serving is contained, each after a healthy window of every other model; the times,
    from the window the remediation names."""
    since = services.ledger.size()
    for attempt in range(MAX_WINDOWS):
        for other in background:
            other.send(other.model.monitoring.window_size, seed=1000 * trial + attempt)
        api.decide(bodies(model, 1000 * trial + attempt, **knobs))
        reached = api.wait_until(done)
        if reached is not None:
            break
    else:
        raise RuntimeError(f"trial {trial + 1} ({kind}): not contained after {MAX_WINDOWS} harmful windows")
    window = _remediation(services, since).window
    complete = parse_utc(completed_at(log, MODEL, window))
    alert = next(
        e for e in services.ledger.events(events.MonitoringAlert, model=MODEL, since_seq=since) if e.window == window
    )
    action = services.ledger.events((events.RollbackCompleted, events.KillSwitchOn), model=MODEL, since_seq=since)[0]
    return {
        "trial": trial + 1,
        "kind": kind,
        "window": window,
        "windows_sent": attempt + 1,
        "alert": _since(complete, parse_utc(alert.ts)),
        "action": _since(complete, parse_utc(action.ts)),
        "mttr": _since(complete, reached),
    }


def _remediation(services: Services, since: int) -> events.RemediationDecided:
    """The remediation that contained (ledgered just after serving may already have seen its action)."""
    deadline = time.monotonic() + WINDOW_TIMEOUT_S
    while time.monotonic() < deadline:
        for remediation in services.ledger.events(events.RemediationDecided, model=MODEL, since_seq=since):
            if {"rollback", "kill_switch"} & set(remediation.actions):
                return remediation
        time.sleep(POLL_S)
    raise RuntimeError("serving was contained, but no monitoring remediation says so")


def _since(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


# --- ticks -------------------------------------------------------------------------------------


def measure_ticks(root: Path, count: int, rows: int) -> tuple[dict, dict, float, float]:
    import dagster as dg

    from definitions import build_definitions
    from programs.instance import open_instance
    from resources import governance_resources

    names = [f"model_{i:02d}" for i in range(1, count + 1)]
    settings = state(root, names, 5, rows)
    config = load_config(settings.config_path)
    print(f"deploying {count} governed models and one window of decisions each ...", flush=True)
    frame, pipeline = train(config.model(names[0]), seed=7, rows=rows)
    window = generate_applications(config.model(names[0]).monitoring.window_size, seed=100)
    outcomes = []
    for name in names:  # one labelled window each, so that every stream of every sensor judges one
        deploy_trained(settings, config.model(name), frame, pipeline, "bench")
        answers = Traffic(settings, config.model(name)).send(len(window), seed=100)
        outcomes += [(a["decision_id"], int(label)) for a, label in zip(answers, window["default"])]
    pd.DataFrame(outcomes, columns=["decision_id", "label"]).to_csv(root / "labels.csv", index=False)
    import_labels(
        DecisionLog.for_settings(settings), Services(settings).ledger, config, root / "labels.csv", actor="bench"
    )
    defs, instance = build_definitions(settings, config), open_instance(settings)
    resources = governance_resources(settings)

    def tick(sensor: str, cursor: str | None) -> tuple[float, str | None]:
        """One evaluation of a fleet sensor: every model's window (cursor None) or nothing new."""
        definition = defs.resolve_sensor_def(monitoring_sensor_name(sensor))
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
            started = time.perf_counter()
            result = definition(context)
            return time.perf_counter() - started, result.cursor

    for sensor in SENSORS:  # warm: references built and loaded, as after the code server's first ticks
        tick(sensor, None)
    judging, idle = {}, {}
    for sensor in SENSORS:
        judging[sensor] = statistics.median(tick(sensor, None)[0] for _ in range(3))
        idle[sensor] = tick(sensor, tick(sensor, None)[1])[0]
    monitor = monitor_for(settings)
    baseline = 0.0
    for name in names:
        model = config.model(name)
        window = monitor.log.window(name, 0, model.monitoring.window_size)
        features = pd.DataFrame([d.features for d in window], columns=model.feature_columns)
        reference = monitor.references.get(model, 1)
        started = time.perf_counter()
        data_drift(model, reference, features, full_report=True)
        baseline += time.perf_counter() - started
    return judging, idle, baseline, judging["data_drift"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--interval", type=int, default=5, help="the sensors' check_interval_seconds")
    parser.add_argument("--rows", type=int, default=50_000, help="generated rows per trained version")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--fleet", type=int, default=50, help="MTTR again among this many models (0: not)")
    parser.add_argument("--only", choices=("mttr", "ticks", "guard"), help="measure one of the three")
    parser.add_argument("--guard-trials", type=int, default=7, help="fairness breaches the guard contains")
    parser.add_argument("--sensor-trials", type=int, default=2, help="the same breaches with the sensors only")
    parser.add_argument("--healthy", type=int, default=24, help="healthy windows the guard watches")
    parser.add_argument("--rate", type=float, default=100.0, help="harmful decisions a second")
    parser.add_argument("--bias", type=float, default=3.0, help="the breach: generator bias against women")
    args = parser.parse_args()
    apply_offline_env()
    os.environ["GOVERN_POLICIES"] = str(REPO / "policies")  # what `state` gives this process: serve, guard, daemon too
    with tempfile.TemporaryDirectory(prefix="bench-mttr-") as tmp:
        if args.only in (None, "mttr"):
            alone = measure_mttr(Path(tmp) / "mttr", args.trials, args.interval, args.rows)
            report_mttr(args, *alone)
            if args.fleet > 1:
                among = measure_mttr(Path(tmp) / "fleet", args.trials, args.interval, args.rows, args.fleet - 1)
                report_fleet(args, alone[0], among[0])
        if args.only in (None, "ticks"):
            report_ticks(args, *measure_ticks(Path(tmp) / "ticks", args.models, args.rows))
        if args.only in (None, "guard"):
            report_guard(args, *measure_guard(Path(tmp) / "guard", args))


def report_mttr(args, results: list[dict], person_rollback: list[float], person_kill: list[float]) -> None:
    print(
        f"\nMTTR: harmful window complete -> serving rolled back or in the safe state "
        f"(sensors every {args.interval} s, {args.trials} trials)"
    )
    print(f"  {'trial':<6}{'harm':<13}{'windows':>8}{'alert':>8}{'action':>9}{'serving':>9}")
    for r in results:
        print(
            f"  {r['trial']:<6}{r['kind']:<13}{r['windows_sent']:>8}{_s(r['alert']):>8}{_s(r['action']):>9}"
            f"{_s(r['mttr']):>9}"
        )
    median = statistics.median(r["mttr"] for r in results)
    print(
        f"  median {median:.1f} s   goal <= {GOAL_MEDIAN_S:.0f} s (ratio {median / GOAL_MEDIAN_S:.2f})   "
        f"'under 60 seconds' claim (ratio {median / CLAIM_S:.2f})"
    )
    print("  baseline, people acting directly (no detection), to serving, median:")
    for kind, person in (("rollback", person_rollback), ("kill switch", person_kill)):  # rollback: a release
        ours = statistics.median(r["mttr"] for r in results if r["kind"] == kind)
        print(
            f"    {kind:<12} person {statistics.median(person):.2f} s   monitoring {ours:.1f} s   "
            f"(detection and orchestration add {ours - statistics.median(person):.1f} s)"
        )


def report_fleet(args, alone: list[dict], among: list[dict]) -> None:
    one, fleet = statistics.median(r["mttr"] for r in alone), statistics.median(r["mttr"] for r in among)
    print(f"\nMTTR of credit_scoring among {args.fleet} governed models (each other one deciding a window each trial)")
    print(f"  {'trial':<6}{'harm':<13}{'windows':>8}{'alert':>8}{'action':>9}{'serving':>9}")
    for r in among:
        print(
            f"  {r['trial']:<6}{r['kind']:<13}{r['windows_sent']:>8}{_s(r['alert']):>8}{_s(r['action']):>9}"
            f"{_s(r['mttr']):>9}"
        )
    print(
        f"  median {fleet:.1f} s among {args.fleet}, {one:.1f} s alone (baseline, this run): ratio {fleet / one:.2f}"
        f"   goal <= {GOAL_FLEET_RATIO}"
    )


def report_ticks(args, judging: dict, idle: dict, baseline: float, ours: float) -> None:
    total_judging, total_idle = sum(judging.values()), sum(idle.values())
    print(f"\nSensor ticks for {args.models} governed models (one evaluation of each sensor per model)")
    print(f"  {'sensor':<14}{'judging a window':>18}{'idle':>10}")
    for sensor in SENSORS:
        print(f"  {sensor:<14}{judging[sensor]:>17.2f}s{idle[sensor]:>9.2f}s")
    print(
        f"  {'all four':<14}{total_judging:>17.2f}s{total_idle:>9.2f}s   goal: one sensor's tick for "
        f"{args.models} models < {GOAL_TICK_S:.0f} s (slowest: {max(judging.values()):.2f} s)"
    )
    print(
        f"  baseline: Evidently's whole DataDriftPreset in the data-drift tick: {baseline:.2f} s "
        f"(ours {ours:.2f} s, ratio {baseline / ours:.1f}x)"
    )


# --- guard -------------------------------------------------------------------------------------


class Guard:
    """`govern guard` on the state dir, stopped by its own process group."""

    def __init__(self, settings: Settings, log: Path) -> None:
        command = [str(Path(sys.executable).parent / "govern"), "--home", str(settings.home)]
        command += ["--config", str(settings.config_path), "guard", "--poll-seconds", "0.1"]
        self.log = open(log, "wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while b"guarding" not in Path(log).read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"govern guard did not start; see {log}")
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process_groups([self.process])
        self.log.close()


def measure_guard(root: Path, args) -> tuple[list[dict], list[dict], int, int]:
    settings = state(root, [MODEL], args.interval, args.rows)
    model = load_config(settings.config_path).model(MODEL)
    print(f"guard: training and deploying v1 and v2, {args.rows} rows each ...", flush=True)
    deploy_version(settings, model, seed=8, rows=args.rows, drift=1.0)
    deploy_version(settings, model, seed=7, rows=args.rows)
    services = Services(settings)
    bea = load_private_key(demo_key_path(settings, "bea"))
    api = Api(settings, root / "govern-serve.log")
    guarded, sensed = [], []
    try:  # the daemon throughout, so its sensors' cursors keep up; the guard only for its own trials
        with DagsterDaemon(settings, root / "daemon.log"):
            guard = Guard(settings, root / "govern-guard.log")
            try:
                for trial in range(args.guard_trials):
                    guarded.append(_breach(api, model, args, 3000 + trial, head=(trial * 211) % 500))
                    print(f"  guard trial {trial + 1}: {_described(guarded[-1])}", flush=True)
                    _reset(api, services, bea)
                healthy, false_alarms = _healthy(settings, model, services, args.healthy)
                print(f"  healthy: {false_alarms} containments in {healthy} windows", flush=True)
            finally:
                guard.stop()
            for trial in range(args.sensor_trials):
                sensed.append(_breach(api, model, args, 4000 + trial, head=0, timeout=120))
                print(f"  sensors-only trial {trial + 1}: {_described(sensed[-1])}", flush=True)
                _reset(api, services, bea)
    finally:
        api.stop()
    return guarded, sensed, healthy, false_alarms


def _breach(api: Api, model: GovernedModel, args, seed: int, head: int, timeout: float = 30.0) -> dict:
    """`head` baseline applications at once, then biased ones at `args.rate` a second until v2 no longer decides
    them (the safe state, or a rollback); the decisions v2 made, and the seconds from the first."""
    rate = args.rate
    if api.status()["safe_state"]:
        raise RuntimeError(f"serving is in the safe state before the breach: {api.status()['safe_state_reason']}")
    if head:
        api.decide(bodies(model, seed, rows=head))
    harmful = bodies(model, seed + 10_000, rows=int(rate * timeout) + GUARD_BATCH, bias=args.bias)
    served, first, started = 0, None, time.monotonic()
    for start in range(0, len(harmful), GUARD_BATCH):
        due = started + start / rate
        time.sleep(max(0.0, due - time.monotonic()))
        answers = api.decide(harmful[start : start + GUARD_BATCH])
        first = first or datetime.now(UTC)
        harmful_now = sum(a["version"] == HARMFUL_VERSION for a in answers)  # v2's, not a rollback's or refer
        served += harmful_now
        if harmful_now < len(answers):
            return {"served": served, "seconds": _since(first, datetime.now(UTC)), "head": head, "contained": True}
    # not contained while it was sent: what was served is a lower bound
    return {"served": served, "seconds": _since(first, datetime.now(UTC)), "head": head, "contained": False}


def _reset(api: Api, services: Services, bea) -> None:
    """People put v2 back: a release if remediation rolled back, bea's enable if a kill switch is on."""
    time.sleep(2.0)  # let a remediation in flight finish before people act
    if services.registry.champion(MODEL) != HARMFUL_VERSION:
        redeploy(services.settings, MODEL, HARMFUL_VERSION)
        api.wait_until(lambda s: s["served_version"] == HARMFUL_VERSION)
    if services.control.kill_switch(MODEL).disabled:
        set_kill_switch(services, MODEL, False, "bea", bea, "bench: reviewed, re-enabled")
    api.wait_until(lambda s: not s["safe_state"])


def _healthy(settings: Settings, model: GovernedModel, services: Services, windows: int) -> tuple[int, int]:
    """Baseline windows through serving's decision path while the guard watches; its containments."""
    since, traffic = services.ledger.size(), Traffic(settings, model)
    for window in range(windows):
        traffic.send(model.monitoring.window_size, seed=5000 + window)
    time.sleep(2.0)  # the guard's last polls
    return windows, len(services.ledger.events(events.GuardContained, model=MODEL, since_seq=since))


def _described(trial: dict) -> str:
    if not trial["contained"]:
        return (
            f"NOT contained while harm was sent for {trial['seconds']:.0f} s: at least {trial['served']} harmful "
            f"decisions served (by v{HARMFUL_VERSION})"
        )
    return (
        f"{trial['served']} harmful decisions served (by v{HARMFUL_VERSION}), contained {trial['seconds']:.2f} s "
        "after the first "
        f"(harm began after {trial['head']} baseline decisions)"
    )


def report_guard(args, guarded: list[dict], sensed: list[dict], healthy: int, false_alarms: int) -> None:
    served = statistics.median(t["served"] for t in guarded)
    seconds = statistics.median(t["seconds"] for t in guarded)
    print(
        f"\nFairness breach (generator bias {args.bias}) at {args.rate:.0f} decisions a second: harmful decisions "
        "served before containment"
    )
    print(
        f"  guard (govern guard, {len(guarded)} trials, {sum(t['contained'] for t in guarded)} contained within "
        f"30 s): median {served:.0f} decisions "
        f"(min {min(t['served'] for t in guarded)}, max {max(t['served'] for t in guarded)}), "
        f"median {seconds:.2f} s from the first harmful decision   goal <= {GOAL_HARMFUL} "
        f"(ratio {served / GOAL_HARMFUL:.2f})"
    )
    if sensed:
        today = statistics.median(t["served"] for t in sensed)
        bound = "" if all(t["contained"] for t in sensed) else "at least "  # a trial not contained: a lower bound
        print(
            f"  today, sensors every {args.interval} s and remediation ({len(sensed)} trials, "
            f"{sum(t['contained'] for t in sensed)} contained): median {bound}{today:.0f} decisions, "
            f"{bound}{statistics.median(t['seconds'] for t in sensed):.1f} s   (guard / today: "
            f"{'at most ' if bound else ''}{served / today:.2f})"
        )
    print(
        f"  false alarms: {false_alarms} containments in {healthy} healthy windows of "
        f"{load_config(REPO / 'governance.yaml').model(MODEL).monitoring.window_size} decisions "
        "(policy bound: at most alpha = 0.01 per window)"
    )


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


if __name__ == "__main__":
    main()
