"""The monitoring scenario `govern demo` plays on a deployed champion, with the Dagster daemon running.

    from programs.scenario import play
    entries = play(settings, "credit_scoring")  # prints as it goes; returns the scenario's ledger entries

1. healthy traffic: every sensor judges the windows, nothing alerts;
2. a population shift (generator drift=0.25): a drift alert, a retraining request
   and the retraining run the daemon launches; its candidate waits for approval;
3. a fairness breach (generator bias=1.0): the previous approved version if it
   passes on the window, else the kill switch; and how long after the window was
   complete serving was contained;
4. the timeline, from the ledger.

Applications are decided through the scoring API's own decision path
(governance.monitoring.traffic), so the decision log is what `govern serve`
writes. Needs a champion deployed through governance, the demo principals
(the system key signs the automated actions) and a model that collects
protected attributes; the sensors' `check_interval_seconds` sets the pace
(5 s makes the scenario take about three minutes, most of it the retraining run).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dagster as dg

from governance import events
from governance.config import load_config
from governance.decisions import DecisionLog
from governance.errors import GovernanceError
from governance.monitoring.traffic import Traffic
from governance.monitoring.windows import completed_at
from governance.release.services import Services
from governance.settings import Settings
from governance.timestamps import parse_utc
from jobs import candidate_job_name
from jobs.monitoring import IN_FLIGHT
from programs.daemon import DagsterDaemon
from programs.instance import open_instance
from sensors.monitoring import SENSORS, monitoring_sensor_name

SHIFT, BREACH = {"drift": 0.25}, {"bias": 1.0}
SHOWN = (
    events.MonitoringAlert,
    events.RemediationDecided,
    events.RetrainingRequested,
    events.RollbackCompleted,
    events.KillSwitchOn,
    events.ApprovalRequested,
)
CONTAINED = (events.RollbackCompleted, events.KillSwitchOn)


def play(
    settings: Settings, model_name: str, say: Callable[[str], None] = print, timeout_seconds: float = 600.0
) -> list[events.Event]:
    model = load_config(settings.config_path).model(model_name)
    if not model.monitoring.collect_protected_attributes:
        raise GovernanceError(f"{model_name} does not collect protected attributes: fairness cannot be monitored")
    services, traffic, instance = Services(settings), Traffic(settings, model), open_instance(settings)
    if services.registry.champion(model_name) is None:
        raise GovernanceError(f"{model_name} has no champion: deploy one first")
    start, seed = services.ledger.size(), 100
    wait = _Waiter(timeout_seconds)
    with DagsterDaemon(settings, settings.dagster_home / "monitoring-scenario.log") as daemon:
        say(
            f"monitoring {model_name}: the Dagster daemon runs the sensors every "
            f"{model.monitoring.check_interval_seconds} s"
        )
        _complete_the_open_window(traffic, seed - 1)
        windows = [_window(traffic, seed + i) for i in range(2)]
        wait(lambda: _all_judged(instance, model_name, windows), "every sensor to judge the healthy windows")
        alerts = services.ledger.events(events.MonitoringAlert, model=model_name, since_seq=start)
        say(f"1. healthy traffic, windows {', '.join(windows)}: judged by every sensor, {len(alerts)} alerts")

        shifted = [_window(traffic, seed + 10 + i, **SHIFT) for i in range(2)]
        wait(
            lambda: services.ledger.events(events.RetrainingRequested, model=model_name, since_seq=start),
            "a retraining request",
        )
        run = wait(lambda: _candidate_run(instance, model_name), "the retraining run")
        say(
            f"2. population shift (drift {SHIFT['drift']}), windows {', '.join(shifted)}: drift alert, retraining "
            f"requested; run {run.run_id[:8]} trains a candidate that will wait for approval"
        )

        breach = services.ledger.size()
        for attempt in range(3):
            _window(traffic, seed + 20 + attempt, **BREACH)
            contained = _contained(services, model_name, breach, wait_seconds=90)
            if contained:
                break
        else:
            raise GovernanceError("the fairness breach was not contained after three harmful windows")
        say(
            f"3. fairness breach (bias {BREACH['bias']}): {', '.join(contained.actions)} "
            f"{_mttr(services, model_name, breach, contained):.1f} s after window {contained.window} "
            "was complete"
        )
        wait(
            lambda: not instance.get_runs(dg.RunsFilter(job_name=candidate_job_name(model_name), statuses=IN_FLIGHT)),
            "the retraining run to finish",
        )
        assert daemon.running, f"the daemon stopped; see {daemon.log_path}"
    shown = services.ledger.events(SHOWN, model=model_name, since_seq=start)
    say("4. timeline (ledger):")
    for event in shown:
        say(f"   {event.ts}  #{event.seq:<5} {event.action:<24} {event.actor:<26} {_what(event)}")
    return shown


class _Waiter:
    def __init__(self, timeout_seconds: float) -> None:
        self.timeout = timeout_seconds

    def __call__(self, condition: Callable, what: str):
        deadline = time.monotonic() + self.timeout
        while not (found := condition()):
            if time.monotonic() > deadline:
                raise GovernanceError(f"monitoring scenario: timed out after {self.timeout:.0f} s waiting for {what}")
            time.sleep(0.5)
        return found


def _complete_the_open_window(traffic: Traffic, seed: int) -> None:
    """Windows are consecutive blocks of a model's decisions: fill the block earlier traffic left open,
    so that the scenario's windows are exactly its own traffic."""
    size = traffic.model.monitoring.window_size
    open_rows = traffic.maker.log.count(traffic.model.name) % size
    if open_rows:
        traffic.send(size - open_rows, seed=seed)


def _window(traffic: Traffic, seed: int, **knobs) -> str:
    """One window of applications decided; its key (first-last decision seq)."""
    answers = traffic.send(traffic.model.monitoring.window_size, seed=seed, **knobs)
    log = traffic.maker.log
    last = log.get(answers[-1]["decision_id"]).seq
    first = log.get(answers[0]["decision_id"]).seq
    return f"{first}-{last}"


def _all_judged(instance: dg.DagsterInstance, model: str, windows: list[str]) -> bool:
    records = instance.fetch_observations(dg.AssetKey([model, "monitoring_report"]), limit=500).records
    seen = {
        (r.asset_observation.metadata["sensor"].value, r.asset_observation.metadata["window"].value) for r in records
    }
    live = [monitoring_sensor_name(name) for name, streams in SENSORS.items() if "live" in streams]
    return all((sensor, window) in seen for sensor in live for window in windows)


def _candidate_run(instance: dg.DagsterInstance, model: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(
        dg.RunsFilter(job_name=candidate_job_name(model), tags={"governance/trigger": "monitoring"}), limit=1
    )
    return runs[0] if runs else None


def _contained(services: Services, model: str, since: int, wait_seconds: float) -> events.RemediationDecided | None:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        for remediation in services.ledger.events(events.RemediationDecided, model=model, since_seq=since):
            if {"rollback", "kill_switch"} & set(remediation.actions):
                return remediation
        time.sleep(0.5)
    return None


def _mttr(services: Services, model: str, since: int, remediation: events.RemediationDecided) -> float:
    """From the last decision of the window the remediation names to the rollback or kill switch taking effect."""
    log = DecisionLog.for_settings(services.settings)
    complete = parse_utc(completed_at(log, model, remediation.window))
    acted = services.ledger.events(CONTAINED, model=model, since_seq=since)[0]
    return (parse_utc(acted.ts) - complete).total_seconds()


def _what(event: events.Event) -> str:
    if isinstance(event, events.RemediationDecided):
        return f"window {event.window}: {', '.join(event.actions) or 'no action'}"
    if isinstance(event, events.MonitoringAlert):
        return f"window {event.window} ({event.alerted_by})"
    return getattr(event, "version", None) or ""
