"""Twenty governed models watched by the same sensors as one: each model's new window is judged within two ticks of
each monitoring sensor, one approvals tick covers every model, and a tick out of time budget resumes with the next
model. The sensors are as many at 50 models as at one."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from definitions import build_definitions
from governance.config import load_config
from governance.monitoring.fleet import FleetCursor, scan_fleet
from governance.monitoring.monitor import monitor_for
from governance.monitoring.traffic import Traffic
from governance.monitoring.windows import LIVE
from governance.trust.demo import demo_principals
from programs.instance import open_instance
from resources import governance_resources
from sensors.approvals import APPROVALS
from sensors.monitoring import SENSORS, monitoring_sensor_name
from sensors.requests import CANDIDATE_REQUESTS
from tests.monitoring.support import deploy_trained, monitored_config, settings_for, train

pytestmark = pytest.mark.slow
MODELS = tuple(f"model_{i:02d}" for i in range(20))
LIVE_CONCERNS = ("data_drift", "score_drift", "fairness")
WINDOW = {"window_size": 100, "min_window_size": 50}


def last_seq(model: str) -> int:
    """The decision-log seq of the model's last decision (the fixture sends each model's window in turn)."""
    return 100 * (MODELS.index(model) + 1)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Twenty models, each with a deployed champion (one trained pipeline, registered and sealed for each), and
    one complete window of decisions each; the code server's references loaded."""
    root = tmp_path_factory.mktemp("fleet")
    settings = settings_for(root / "govern", monitored_config(root / "governance.yaml", MODELS, **WINDOW))
    demo_principals(settings)
    config = load_config(settings.config_path)
    frame, pipeline = train(config.model(MODELS[0]), seed=7, rows=2000)
    monitor = monitor_for(settings, record=False)  # the sensors' own, as a code server holds it
    for name in MODELS:
        version = deploy_trained(settings, config.model(name), frame, pipeline, "generator(seed=7, rows=2000)")
        Traffic(settings, config.model(name)).send(WINDOW["window_size"], seed=11)
        # as in a running code server, which loaded each champion's reference when it first judged it (the first
        # judgement of a new version costs about 2 s more, the reference's scoring and Evidently's setup)
        monitor.references.get(config.model(name), version)
    return settings, config


def test_the_sensors_are_as_many_at_fifty_models_as_at_one(tmp_path: Path):
    def sensors(models: tuple[str, ...]) -> list[str]:
        settings = settings_for(tmp_path / "govern", monitored_config(tmp_path / f"{len(models)}.yaml", models))
        return sorted(s.name for s in build_definitions(settings, load_config(settings.config_path)).sensors)

    one = sensors(MODELS[:1])
    assert one == sorted(
        [
            *(monitoring_sensor_name(c) for c in SENSORS),
            "retraining_requests",
            "guard_reports",
            APPROVALS,
            CANDIDATE_REQUESTS,
        ]
    )
    assert sensors(tuple(f"model_{i:02d}" for i in range(50))) == one


def test_every_model_s_new_window_is_judged_within_two_ticks(fleet):
    settings, config = fleet
    defs = build_definitions(settings, config)
    instance = open_instance(settings)
    for concern in LIVE_CONCERNS:
        sensor, cursor = defs.resolve_sensor_def(monitoring_sensor_name(concern)), None
        for _ in range(2):
            with dg.build_sensor_context(
                instance=instance, cursor=cursor, resources=governance_resources(settings)
            ) as context:
                result = sensor(context)
            cursor = result.cursor
            for event in result.asset_events:  # as the daemon records them
                instance.report_runless_asset_event(event)
        positions = json.loads(cursor)["windows"]
        assert {name: positions[name][LIVE] for name in MODELS} == {name: last_seq(name) for name in MODELS}, concern
    judged = {
        name: instance.fetch_observations(dg.AssetKey([name, "monitoring_report"]), limit=10).records for name in MODELS
    }
    for name, records in judged.items():
        sensors = {r.asset_observation.metadata["sensor"].value for r in records}
        assert sensors == {monitoring_sensor_name(c) for c in LIVE_CONCERNS}, name
        assert {r.asset_observation.metadata["window"].value for r in records} == {
            f"{last_seq(name) - 99}-{last_seq(name)}"
        }


def test_a_tick_out_of_time_resumes_with_the_next_model(fleet, tmp_path: Path):
    settings, config = fleet
    models = list(config.models.values())
    monitor = monitor_for(settings)
    streams = SENSORS["score_drift"]
    first = scan_fleet(monitor, models, streams, FleetCursor({}), budget_seconds=0.0)
    assert [m.name for m, _ in first.scans] == [MODELS[0]] and first.cursor.resume == MODELS[1]
    second = scan_fleet(monitor, models, streams, FleetCursor.parse(first.cursor.dumps()), budget_seconds=0.0)
    assert [m.name for m, _ in second.scans] == [MODELS[1]] and second.cursor.resume == MODELS[2]
    assert second.cursor.windows[MODELS[0]] == {LIVE: last_seq(MODELS[0])}  # kept from the first tick
    everyone = scan_fleet(monitor, models, streams, second.cursor)
    assert [m.name for m, _ in everyone.scans] == [*MODELS[2:], *MODELS[:2]] and everyone.cursor.resume is None
    assert all(everyone.cursor.windows[name] == {LIVE: last_seq(name)} for name in MODELS)
    assert "models from" in first.message() and "wait for the next tick" in first.message()


def test_one_approvals_tick_observes_every_model_and_launches_no_deployed_approval(fleet):
    """As each model's own approvals sensor did on its first tick: every grant since the start of the ledger is
    looked at, and the ones deployments used are passed over."""
    settings, config = fleet
    sensor = build_definitions(settings, config).resolve_sensor_def(APPROVALS)
    instance = open_instance(settings)
    with dg.build_sensor_context(instance=instance, resources=governance_resources(settings)) as context:
        first = sensor(context)
    assert not first.run_requests
    assert sorted(e.asset_key for e in first.asset_events) == [dg.AssetKey([n, "serving_state"]) for n in MODELS]
    positions = json.loads(first.cursor)["models"]
    assert sorted(positions) == sorted(MODELS) and all(p["ledger_seq"] > 0 for p in positions.values())
    with dg.build_sensor_context(
        instance=instance, cursor=first.cursor, resources=governance_resources(settings)
    ) as context:
        second = sensor(context)
    assert not second.run_requests and not second.asset_events and second.cursor == first.cursor
