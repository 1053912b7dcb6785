"""The monitoring sensors on a real instance: no false alarms, an alert for each shift, cursors, failure modes."""

from __future__ import annotations

import dagster as dg
import pytest

from governance.monitoring.monitor import monitor_for
from governance.release.kill_switch import set_kill_switch
from governance.trust.demo import demo_key_path
from governance.trust.keys import load_private_key
from resources import GovernanceResource, governance_resources
from tests.monitoring.conftest import CONCERNS, Monitored, govern_labels, sensor_name, windows_cursor

WINDOWS = 16  # 8,000 stationary decisions


def import_labels(monitored: Monitored, path) -> None:
    result = govern_labels(monitored.settings, "import", str(path))
    assert result.exit_code == 0, result.output


def skip_message(result) -> str:
    return result.skip_reason.skip_message if result.skip_reason else ""


def judged_windows(monitored: Monitored) -> dict[str, list[str]]:
    """Per sensor, the windows it judged, from its observations of monitoring_report."""
    records = monitored.instance.fetch_observations(dg.AssetKey(["credit_scoring", "monitoring_report"]), limit=1000)
    judged: dict[str, list[str]] = {}
    for record in reversed(records.records):  # oldest first
        metadata = record.asset_observation.metadata
        judged.setdefault(f"{metadata['sensor'].value}/{metadata['stream'].value}", []).append(metadata["window"].value)
    return judged


def test_no_alarm_on_stationary_traffic_over_many_windows(monitored: Monitored, tmp_path):
    for window in range(WINDOWS):
        monitored.send(seed=1000 + window)
    import_labels(monitored, monitored.labels_file(tmp_path / "labels.csv"))
    requests = monitored.tick_all() + monitored.tick_all()  # at most 10 windows per stream per tick
    assert requests == [], [r.tags for r in requests]
    judged = judged_windows(monitored)
    expected = [f"{500 * i + 1}-{500 * (i + 1)}" for i in range(WINDOWS)]
    for stream in (
        "monitoring_data_drift/live",
        "monitoring_score_drift/live",
        "monitoring_fairness/live",
        "monitoring_fairness/labelled",
        "monitoring_performance/labelled",
    ):
        assert judged[stream] == expected, stream
    assert windows_cursor(monitored.cursors["fairness"]) == {"live": 500 * WINDOWS, "labelled": 500 * WINDOWS}
    assert "window not complete" in skip_message(monitored.tick("score_drift"))


@pytest.mark.parametrize(
    "knobs, sensor, calls_for",
    [
        ({"drift": 0.3}, "data_drift", "retrain"),
        ({"drift": 0.3}, "score_drift", "retrain"),
        ({"bias": 1.0}, "fairness", "contain"),
    ],
)
def test_each_injected_shift_alerts_with_the_rule_that_fired(monitored: Monitored, knobs, sensor, calls_for):
    monitored.send(seed=2000)
    monitored.send(seed=2001, **knobs)
    result = monitored.tick(sensor)
    assert len(result.run_requests) == 1, skip_message(result)
    request = result.run_requests[0]
    assert request.tags["governance/window"] == "501-1000" and request.tags["governance/requested_by"] == "system"
    config = request.run_config["ops"]["credit_scoring__monitoring_report"]["config"]
    assert (config["first_seq"], config["last_seq"], config["stream"]) == (501, 1000, "live")
    observed = judged_windows(monitored)[f"{sensor_name(sensor)}/live"]
    assert observed == ["1-500", "501-1000"]
    key = dg.AssetKey(["credit_scoring", "monitoring_report"])
    records = monitored.instance.fetch_observations(key, limit=1).records
    summary = records[0].asset_observation.metadata["summary"].value
    assert f"{calls_for.upper()} by monitoring." in summary, summary


def test_outcomes_that_contradict_the_scores_alert_performance_once_labelled(monitored: Monitored, tmp_path):
    monitored.send(seed=3000)
    assert "waiting for outcomes" in skip_message(monitored.tick("performance"))
    import_labels(monitored, monitored.labels_file(tmp_path / "flipped.csv", flip=True))
    performance = monitored.tick("performance")
    assert [r.tags["governance/stream"] for r in performance.run_requests] == ["labelled"]


def test_equal_opportunity_is_judged_on_labelled_windows(monitored: Monitored, tmp_path):
    monitored.send(seed=3001)
    monitored.send(seed=3002, bias=1.0)
    # a cohort in which everyone repaid: the women among them were still approved less often; imported by the
    # outcome_labels asset this time
    path = monitored.labels_file(tmp_path / "labels.csv", everyone_repaid=True)
    labels = monitored.defs.get_assets_def(dg.AssetKey(["credit_scoring", "outcome_labels"]))
    imported = dg.materialize(
        [labels],
        instance=monitored.instance,
        resources=governance_resources(monitored.settings),
        run_config={"ops": {"credit_scoring__outcome_labels": {"config": {"path": str(path)}}}},
    )
    metadata = imported.asset_materializations_for_node("credit_scoring__outcome_labels")[0].metadata
    assert metadata["newly_labelled"].value == 1000 and metadata["coverage"].value == 1.0
    fairness = monitored.tick("fairness")
    alerts = sorted((r.tags["governance/stream"], r.tags["governance/window"]) for r in fairness.run_requests)
    assert alerts == [("labelled", "501-1000"), ("live", "501-1000")]
    assert judged_windows(monitored)["monitoring_fairness/labelled"] == ["1-500", "501-1000"]


def test_a_second_sensor_alerting_on_a_reported_window_requests_nothing_more(monitored: Monitored):
    monitored.send(seed=4000, drift=0.5)
    first = monitored.tick("score_drift").run_requests
    assert len(first) == 1
    monitored.run(first[0])
    second = monitored.tick("data_drift")
    assert second.run_requests == []
    assert "already being reported and remediated by run" in skip_message(second)


def test_cursors_neither_skip_nor_repeat_windows_across_restarts(monitored: Monitored):
    monitored.send(seed=5000, rows=700)  # one window and 200 of the next
    assert len(judged_windows(monitored)) == 0
    monitored.tick("score_drift")
    assert windows_cursor(monitored.cursors["score_drift"]) == {"live": 500}
    again = monitored.tick("score_drift")
    assert "200 of 500 decisions since seq 500, window not complete" in skip_message(again)
    monitor_for.cache_clear()  # a restarted code server: nothing in memory, the cursor from the instance
    monitored.send(seed=5001, rows=1100)
    monitored.tick("score_drift")
    monitored.tick("score_drift")
    assert judged_windows(monitored)["monitoring_score_drift/live"] == ["1-500", "501-1000", "1001-1500"]
    assert windows_cursor(monitored.cursors["score_drift"]) == {"live": 1500}


def test_failure_modes_never_act_and_say_why(monitored: Monitored):
    empty = monitored.tick("data_drift")
    assert empty.run_requests == [] and "0 of 500 decisions since seq 0, window not complete" in skip_message(empty)

    monitored.send(seed=6000, rows=150, bias=1.0)  # harmful, but only 150 decisions are scored ...
    bea = load_private_key(demo_key_path(monitored.settings, "bea"))
    set_kill_switch(monitored.services, "credit_scoring", True, "bea", bea, "test: safe state")
    monitored.send(seed=6001, rows=350, bias=1.0)  # ... the rest are answered in the safe state
    set_kill_switch(monitored.services, "credit_scoring", False, "bea", bea, "test: back")
    small = monitored.tick("fairness")
    assert small.run_requests == []
    assert "live window 1-500 passed over: only 150 decisions scored by v2" in skip_message(small)
    assert "(minimum 200), too few to judge" in skip_message(small)

    configured = governance_resources(monitored.settings)["governance"]
    down = {
        "governance": GovernanceResource(
            **{
                **configured.model_dump(),  # the database server is down
                "database_url": "postgresql://govern@127.0.0.1:1/unreachable",
            }
        )
    }
    monitored.send(seed=6002, bias=1.0)
    before = monitored.cursors["fairness"]
    unavailable = monitored.tick("fairness", resources=down)
    assert unavailable.run_requests == [] and monitored.cursors["fairness"] == before
    assert "not judged now (tried again next tick): OperationalError" in skip_message(unavailable)
    back = monitored.tick("fairness")
    assert [r.tags["governance/window"] for r in back.run_requests] == ["501-1000"]

    waiting = monitored.tick("performance")
    assert waiting.run_requests == [] and "labelled window 1-500 passed over: only 150" in skip_message(waiting)
    assert "labelled window 501-1000: waiting for outcomes: 0 of 500 decisions labelled" in skip_message(waiting)


def test_labels_that_never_arrive_are_passed_over_once_later_ones_have(monitored: Monitored, tmp_path):
    monitored.send(seed=7000)
    monitored.sent.clear()  # the first window's outcomes never arrive
    monitored.send(seed=7001)
    import_labels(monitored, monitored.labels_file(tmp_path / "later.csv"))
    result = monitored.tick("performance")
    message = skip_message(result)
    assert result.run_requests == []
    assert (
        "labelled window 1-500 passed over: 0 of 500 decisions labelled (minimum 200), and later decisions "
        "are labelled: these labels never arrived" in message
    )
    assert judged_windows(monitored)["monitoring_performance/labelled"] == ["501-1000"]


def test_a_cursor_it_did_not_write_is_refused_with_a_message(monitored: Monitored):
    monitored.cursors["score_drift"] = "1500"
    result = monitored.tick("score_drift")
    assert result.run_requests == [] and "is not a fleet monitoring cursor" in skip_message(result)


def test_sensors_exist_for_every_concern_and_run_by_default(monitored: Monitored):
    names = {s.name for s in monitored.defs.sensors}
    assert names == {sensor_name(c) for c in CONCERNS} | {"retraining_requests", "guard_reports"} | {
        "approvals",
        "candidate_requests",
    }  # none per model
    for concern in CONCERNS:
        sensor = monitored.defs.resolve_sensor_def(sensor_name(concern))
        assert sensor.default_status.value == "RUNNING" and sensor.minimum_interval_seconds == 1
