"""Dagster's "Preview tick result" (a schedule) and "Test sensor" evaluate for real: evaluation writes nothing.

Each schedule and sensor of the code location is evaluated through Dagster's own evaluation entry point
(`evaluate_tick`, what the UI's preview calls in the code server) on a copy of a monitored state with work
waiting for every one of them (complete windows of decisions, a monitoring retraining request, a granted
approval is not needed: the approvals sensor still observes the serving state). The ledger, the dynamic
partitions and every file of the state dir are the same afterwards; what the daemon would do is only in the
returned results (run requests, partition requests, observations).
"""

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from governance.monitoring.retraining import MONITORING, request_retraining
from governance_assets.common import versions
from resources import governance_resources
from sensors.monitoring import RETRAINING_SENSOR, monitoring_sensor_name
from tests.monitoring.conftest import Monitored
from tests.monitoring.support import MODEL

# SQLite's shared-memory index is rewritten by readers; it holds no data.
READERS_TOUCH = ("-shm",)


def test_previewing_every_schedule_and_sensor_writes_nothing(monitored: Monitored):
    monitored.send(seed=11, rows=1200, drift=2.0)
    request_retraining(monitored.services, MODEL, MONITORING, "drift found by the test")
    before = _state(monitored)

    results = {name: result for name, result in _evaluate_all(monitored)}

    after = _state(monitored)
    assert after["ledger"] == before["ledger"], monitored.services.ledger.entries(since_seq=before["ledger"][0])
    assert after["partitions"] == before["partitions"]
    changed = {
        name
        for name in after["files"].keys() | before["files"].keys()
        if after["files"].get(name) != before["files"].get(name)
    }
    assert not changed
    retraining = results[RETRAINING_SENSOR]
    assert [r.partition_key for r in retraining.run_requests] == ["credit_scoring-v3"]
    assert [r.partition_keys for r in retraining.dynamic_partitions_requests] == [["credit_scoring-v3"]]
    schedule = results[f"{MODEL}_retraining_schedule"]
    assert schedule.run_requests and schedule.run_requests[0].partition_key is None
    approvals = results["approvals"]
    assert [e.asset_key for e in approvals.asset_events] == [dg.AssetKey([MODEL, "serving_state"])]
    judged = [results[monitoring_sensor_name(concern)] for concern in ("data_drift", "score_drift", "fairness")]
    assert any(result.run_requests for result in judged)  # there was work: the preview shows it, does not do it


def _evaluate_all(monitored: Monitored):
    """Each sensor and schedule evaluated as the code server evaluates a preview: from a reference to the
    instance, in a context that is closed afterwards (an open one leaves the instance it opened installed as
    Dagster's current defs-state storage, and every later Definitions load fails once it is collected)."""
    resources = governance_resources(monitored.settings)
    repository = monitored.defs.get_repository_def()
    for sensor in repository.sensor_defs:
        with dg.build_sensor_context(
            instance_ref=monitored.instance.get_ref(), resources=resources, repository_def=repository
        ) as context:
            result = sensor.evaluate_tick(context)
        yield sensor.name, result
    for schedule in repository.schedule_defs:
        with dg.build_schedule_context(
            instance_ref=monitored.instance.get_ref(),
            resources=resources,
            repository_def=repository,
            scheduled_execution_time=datetime(2026, 11, 23, 3, tzinfo=UTC),
        ) as context:
            result = schedule.evaluate_tick(context)
        yield schedule.name, result


def _state(monitored: Monitored) -> dict:
    ledger = monitored.services.ledger
    return {
        "ledger": (ledger.size(), ledger.root()),
        "partitions": monitored.instance.get_dynamic_partitions(versions(monitored.model).name),
        "files": _digests(monitored.settings.home),
    }


def _digests(home: Path) -> dict[str, str]:
    return {
        str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(home.rglob("*"))
        if path.is_file() and not path.name.endswith(READERS_TOUCH)
    }
