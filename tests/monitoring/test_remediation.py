"""The remediation job: the policy chooses rollback, kill switch or retraining; automation signs, Cedar authorises,
the ledger records; it never promotes, and it does nothing twice."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from governance import events
from governance.monitoring.monitor import monitor_for
from governance.monitoring.recorded import DRIFT_HTML
from governance.monitoring.remediation import _contained_by_monitoring
from governance.monitoring.windows import read_window
from governance.release.kill_switch import set_kill_switch
from governance.release.production import verified_moves
from governance.serving.app import create_app
from governance.trust.demo import demo_key_path
from governance.trust.keys import load_private_key
from resources import governance_resources
from tests.attacks.support import sql
from tests.helpers import REPO
from tests.monitoring.conftest import MODEL, Monitored
from tests.monitoring.support import redeploy
from tests.monitoring.test_retraining_runs import create_run


def alert(monitored: Monitored, sensor: str) -> dg.RunRequest:
    requests = monitored.tick(sensor).run_requests
    assert len(requests) == 1, [r.tags for r in requests]
    return requests[0]


def remediation(monitored: Monitored) -> events.RemediationDecided:
    return monitored.ledger(events.RemediationDecided)[-1]


def test_an_mlflow_tag_naming_other_training_data_blinds_nothing(monitored: Monitored):
    """A writer of MLflow's store points v2's `governance.data_md5` tag at v1's data, on which the drifted traffic
    looks normal: the reference is built from the data v2's approved evidence pack seals, so the drift alerts."""
    registry = monitored.services.registry
    v1_data, v2_data = (registry.version(MODEL, v).tags["governance.data_md5"] for v in (1, 2))
    registry.client.set_model_version_tag(MODEL, "2", "governance.data_md5", v1_data)
    monitored.send(seed=100, drift=1.0)
    assert monitored.run(alert(monitored, "score_drift")).success
    built = [e for e in monitored.ledger(events.MonitoringReferenceBuilt) if e.version == f"{MODEL}-v2"]
    assert built and {e.data_md5 for e in built} == {v2_data}


def test_severe_drift_rolls_back_to_the_previous_version_that_passes_on_the_window(monitored: Monitored):
    monitored.send(seed=100, drift=1.0)  # v1's shifted population: v2's scores drift severely, v1 would be fine
    request = alert(monitored, "score_drift")
    result = monitored.run(request)
    assert result.success

    services = monitored.services
    assert services.registry.champion(MODEL) == 1 and not services.control.kill_switch(MODEL).disabled
    move = services.control.deployments(MODEL, "completed")[-1]
    assert (move.kind, move.version, move.actor) == ("rollback", 1, "system")
    steps = [events.event_type(e.action) for e in services.ledger.entries(model=MODEL)][-8:]
    assert steps == [
        events.MonitoringAlert,
        events.MonitoringReferenceBuilt,
        events.StatementRecorded,
        events.RollbackStarted,
        events.RollbackCompleted,
        events.StatementRecorded,
        events.RetrainingRequested,
        events.RemediationDecided,
    ]
    acted = remediation(monitored)
    assert acted.actions == ("rollback", "retraining_requested") and acted.contained is True
    assert acted.rollback_target["version"] == 1 and acted.rollback_target["passes"] is True
    assert acted.rollback_target["skipped"] == []
    assert "rolled back to v1 (monitoring.contain_by_rollback)" in acted.notes
    statement = services.statements.find(action="rollback", model=MODEL)[0]  # newest first
    assert statement.signed.statement.principal == "system"
    assert "monitoring.score_drift_severe" in statement.signed.statement.comment

    report = result.asset_materializations_for_node(f"{MODEL}__monitoring_report")[0]
    console = TestClient(create_app(monitored.settings), raise_server_exceptions=False)
    html = console.get(urlsplit(report.metadata["evidently_report"].value).path)  # the console's page of it
    assert html.status_code == 200 and len(html.content) > 100_000  # Evidently's self-contained HTML
    figures = json.loads(Path(report.metadata["report"].value).read_bytes())
    drift = next(m for m in figures["measurements"] if m["concern"] == "data_drift")
    assert len(drift["details"]["by_feature"]) == len(monitored.model.feature_columns)
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR

    moves = len(services.control.deployments(MODEL))
    assert monitored.run(request).success  # the same window again (another sensor, a retry, a person)
    assert len(services.control.deployments(MODEL)) == moves and not services.control.kill_switch(MODEL).disabled
    again = remediation(monitored)
    assert again.actions == ()
    assert "the window was judged on v2 but the champion is now v1: nothing to do" in again.notes
    assert services.ledger.verify().ok

    with (Path(report.metadata["report"].value).parent / DRIFT_HTML).open("a") as edited:  # edited after ledgering
        edited.write("<p>no drift</p>")
    refused = console.get(urlsplit(report.metadata["evidently_report"].value).path)
    assert refused.status_code == 409 and "Evidently report changed" in refused.text and "no drift" not in refused.text


def test_a_fairness_breach_no_earlier_version_avoids_trips_the_kill_switch(monitored: Monitored):
    monitored.send(seed=200, bias=1.0)  # v2 approves women far less often; v1 drifts severely on it too
    request = alert(monitored, "fairness")
    assert monitored.run(request).success
    services = monitored.services
    switch = services.control.kill_switch(MODEL)
    assert switch.disabled and switch.changed_by == "system" and services.registry.champion(MODEL) == 2
    assert "monitoring.disparate_impact" in switch.reason
    acted = remediation(monitored)
    assert "kill_switch" in acted.actions and acted.contained is True
    assert acted.rollback_target["version"] == 1 and acted.rollback_target["passes"] is False
    assert "monitoring.score_drift_severe" in acted.rollback_target["summary"]
    assert any("kill switch on (monitoring.contain_by_kill_switch)" in note for note in acted.notes)
    assert services.ledger.latest(events.KillSwitchOn, model=MODEL).actor == "system"
    assert monitored.send(seed=201, rows=1)[0]["outcome"] == "refer"  # serving is in the safe state

    bea = load_private_key(demo_key_path(monitored.settings, "bea"))
    set_kill_switch(services, MODEL, False, "bea", bea, "reviewed: traffic was a data error")
    assert monitored.run(request).success  # the same window reported again after a person re-enabled
    assert not services.control.kill_switch(MODEL).disabled
    assert "bea re-enabled the model at" in " ".join(remediation(monitored).notes)


def test_a_forged_kill_switch_row_does_not_stop_containment(monitored: Monitored):
    """A writer of the governance database rewrites the kill switch row as a re-enable by bea dated far ahead,
    before a fairness breach: the row is a cache, so monitoring still switches the model off with a signed
    statement, and serving refers."""
    sql(monitored.settings, "DELETE FROM kill_switches WHERE model = :model", model=MODEL)
    sql(
        monitored.settings,
        "INSERT INTO kill_switches (model, disabled, reason, changed_by, changed_at, statement_digest) "
        "VALUES (:model, :disabled, 'reviewed', 'bea', '9999-01-01T00:00:00.000000Z', :digest)",
        model=MODEL,
        disabled=False,
        digest="0" * 64,
    )
    monitored.send(seed=200, bias=1.0)
    assert monitored.run(alert(monitored, "fairness")).success
    assert "kill_switch" in remediation(monitored).actions
    assert monitored.services.ledger.latest(events.KillSwitchOn, model=MODEL).actor == "system"
    assert monitored.send(seed=201, rows=1)[0]["outcome"] == "refer"


def test_monitoring_never_flaps_back_to_a_version_it_contained(monitored: Monitored):
    monitored.send(seed=400, drift=1.0)  # v2 drifts severely on v1's population: rolled back to v1
    assert monitored.run(alert(monitored, "score_drift")).success
    assert monitored.services.registry.champion(MODEL) == 1
    monitored.send(seed=401)  # the population returns: v1 drifts severely, and v2 would pass, but ...
    assert monitored.run(alert(monitored, "score_drift")).success
    services = monitored.services
    assert services.registry.champion(MODEL) == 1 and services.control.kill_switch(MODEL).disabled
    target = remediation(monitored).rollback_target
    assert target["version"] is None and target["passes"] is False
    (skipped,) = target["skipped"]
    assert (
        skipped["version"] == 2 and "contained by monitoring and no person has put it back since" in skipped["reason"]
    )


def test_forged_entries_neither_put_back_a_contained_version_nor_stall_containment(monitored: Monitored):
    """After monitoring contained v2, a ledger writer appends a deploy of v2 by a person that no approval backs (a
    replay of its old completion under a new deployment id), an enable by bea with no statement behind it, and a
    remediation decision of the wrong shape: v2 stays contained, and none of them stops the reading."""
    monitored.send(seed=400, drift=1.0)
    assert monitored.run(alert(monitored, "score_drift")).success
    services = monitored.services
    deployed = services.ledger.latest(events.DeploymentCompleted, model=MODEL, version=f"{MODEL}-v2")
    services.ledger.append(replace(deployed, actor="ravi", deployment_id=999))
    services.ledger.append(events.KillSwitchOff(actor="bea", model=MODEL, statement="b" * 64, policy="c" * 64))
    services.ledger.append_record(
        actor="system:monitoring",
        action=events.RemediationDecided.action,
        subject={"model": MODEL},
        facts={"actions": 7},
    )
    monitor = monitor_for(monitored.settings)
    model = services.governed_model(MODEL)
    assert _contained_by_monitoring(monitor, model, verified_moves(services, MODEL)) == {2}


@pytest.mark.parametrize("hidden", [False, True], ids=["as_recorded", "row_rewritten_by_a_trigger"])
def test_automation_never_restores_a_version_a_person_rolled_back_from(monitored: Monitored, hidden: bool):
    """Also when a writer of the control store had a trigger rewrite paul's rollback row as the system's, from no
    version: who rolled back, and from which version, come from the signed record (before, the row's copy in the
    ledger let automation restore v2)."""
    if hidden:
        sql(
            monitored.settings,
            "CREATE TRIGGER quiet_rollback AFTER INSERT ON deployments WHEN NEW.kind = 'rollback' BEGIN "
            "UPDATE deployments SET previous_version = NULL, actor = 'system' WHERE id = NEW.id; END",
        )
    monitored.roll_back_by_hand(1)  # paul took v2 out of production: v1, trained on a shifted population, serves
    monitored.send(seed=100)  # baseline applicants: v1's scores drift severely; v2 would pass, but paul removed it
    assert monitored.run(alert(monitored, "score_drift")).success
    services = monitored.services
    assert services.registry.champion(MODEL) == 1 and services.control.kill_switch(MODEL).disabled
    acted = remediation(monitored)
    assert "kill_switch" in acted.actions and "rollback" not in acted.actions
    target = acted.rollback_target
    assert target["version"] is None and target["passes"] is False
    (skipped,) = target["skipped"]
    assert skipped["version"] == 2
    assert (
        "paul rolled back away from v2" in skipped["reason"] and "no person has put it back since" in skipped["reason"]
    )
    assert "auto_rollback_target not permitted" in skipped["reason"]
    # v2 is the only earlier approved version, and it would pass on this window: only people's choice kept it out
    monitor, judged = monitor_for(monitored.settings), acted.judgement
    window = read_window(monitor.log, MODEL, int(acted.window.split("-")[0]), int(acted.window.split("-")[1]))
    concerns = tuple(m["concern"] for m in judged["measurements"])
    as_v2, _ = monitor.judge(monitored.model, window, acted.stream, concerns, as_version=2)
    assert not as_v2.contain.allowed, as_v2.summary()
    assert [m.version for m in services.control.deployments(MODEL, "completed")] == [1, 2, 1]


def test_a_release_over_an_automatic_rollback_is_not_a_person_rolling_back(monitored: Monitored):
    """People release v2 again after monitoring rolled it back to v1: v1 stays a target for the next harm
    (the release moved away from v1, but nobody rolled back away from it). bench/mttr.py relies on this."""
    monitored.send(seed=100, drift=1.0)
    assert monitored.run(alert(monitored, "score_drift")).success
    assert monitored.services.registry.champion(MODEL) == 1
    redeploy(monitored.settings, MODEL, 2)
    monitored.send(seed=101, drift=1.0)
    assert monitored.run(alert(monitored, "score_drift")).success
    services = monitored.services
    assert services.registry.champion(MODEL) == 1 and not services.control.kill_switch(MODEL).disabled
    target = remediation(monitored).rollback_target
    assert target["version"] == 1 and target["passes"] is True and target["skipped"] == []


def _changed_policies(tmp_path: Path, allow_older_policy: bool) -> Path:
    """A copy of the policies (so another bundle digest than the one the versions were approved under); with
    `allow_older_policy`, one that explicitly lets automation restore versions approved under another bundle."""
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    rules = policies / "monitoring.cedar"
    text = rules.read_text() + "\n// changed after the versions were approved\n"
    if allow_older_policy:
        text = text.replace("  context.approved_under_policy_in_force &&\n", "")
    rules.write_text(text)
    return policies


@pytest.mark.parametrize("allow_older_policy", [False, True])
def test_a_version_approved_under_another_policy_is_restored_only_if_the_policy_says_so(
    monitored: Monitored, tmp_path: Path, allow_older_policy: bool
):
    monitored.use_policies(_changed_policies(tmp_path, allow_older_policy))
    services = monitored.services
    granted = services.ledger.latest(events.ApprovalGranted, model=MODEL, version=f"{MODEL}-v1")
    in_force = monitor_for(monitored.settings).policies().digest
    services.ledger.append(replace(granted, policy=in_force))  # a ledger writer's copy: the pack still says which
    monitored.send(seed=100, drift=1.0)  # v2 drifts severely; v1 would pass
    assert monitored.run(alert(monitored, "score_drift")).success
    target = remediation(monitored).rollback_target
    if allow_older_policy:
        assert services.registry.champion(MODEL) == 1 and not services.control.kill_switch(MODEL).disabled
        assert target["version"] == 1 and target["passes"] is True and target["skipped"] == []
    else:
        assert services.registry.champion(MODEL) == 2 and services.control.kill_switch(MODEL).disabled
        (skipped,) = target["skipped"]
        assert skipped["version"] == 1 and "was approved under policy" in skipped["reason"]
        assert "not the policy in force" in skipped["reason"]


def test_moderate_drift_opens_one_retraining_run_per_deployment_and_never_promotes(monitored: Monitored):
    monitored.send(seed=300, drift=0.3)
    monitored.send(seed=301, drift=0.3)
    requests = monitored.tick("data_drift").run_requests
    assert [r.tags["governance/window"] for r in requests] == ["1-500", "501-1000"]
    for request in requests:
        assert monitored.run(request).success
    services = monitored.services
    assert services.registry.champion(MODEL) == 2 and not services.control.kill_switch(MODEL).disabled
    assert [e.window for e in monitored.ledger(events.RemediationDecided)] == ["1-500", "501-1000"]
    retraining = monitored.ledger(events.RetrainingRequested)
    assert len(retraining) == 1 and retraining[0].actor == "system"
    assert (retraining[0].trigger, retraining[0].window) == ("monitoring", "1-500")
    assert retraining[0].deployment_id == services.control.deployments(MODEL, "completed")[-1].id
    assert "retraining was already requested for this deployment" in " ".join(remediation(monitored).notes)

    launched = monitored.tick("retraining_requests")
    (request,) = launched.run_requests
    assert request.partition_key == "credit_scoring-v3"
    assert request.tags["governance/requested_by"] == "system"
    assert monitored.instance.has_dynamic_partition("credit_scoring_versions", "credit_scoring-v3")
    # until the daemon has created its run, the request is still open: the same run key (which the daemon
    # launches once); once created, the sensor waits for it
    assert [r.run_key for r in monitored.tick("retraining_requests").run_requests] == [request.run_key]
    create_run(monitored, request, dg.DagsterRunStatus.NOT_STARTED)
    assert monitored.tick("retraining_requests").run_requests == []


def test_the_action_is_the_policy_s_choice_not_the_code_s(monitored: Monitored, tmp_path: Path):
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    rules = policies / "monitoring.cedar"
    rules.write_text(
        rules.read_text()
        .replace("when { context.rollback_target_passes };", "when { false };")
        .replace("unless { context.rollback_target_passes };", ";")
        .replace("  context.approved_under_policy_in_force &&\n", "")
    )  # v1 stays a target
    monitored.use_policies(policies)  # a stricter policy: never roll back automatically, always switch off
    monitored.send(seed=100, drift=1.0)  # the rollback scenario: v1 passes on the window
    assert monitored.run(alert(monitored, "score_drift")).success
    services = monitored.services
    assert services.registry.champion(MODEL) == 2 and services.control.kill_switch(MODEL).disabled
    acted = remediation(monitored)
    assert "kill_switch" in acted.actions and acted.rollback_target["passes"] is True


def test_harm_that_the_policy_permits_no_containment_for_fails_loudly(monitored: Monitored, tmp_path: Path):
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    rules = policies / "monitoring.cedar"
    rules.write_text(rules.read_text().replace("unless { context.rollback_target_passes };", "when { false };"))
    monitored.use_policies(policies)
    monitored.send(seed=200, bias=1.0)  # harm; no earlier version passes; and this policy permits no kill switch
    result = monitored.run(alert(monitored, "fairness"))
    assert not result.success
    assert "harm was found and NOT contained" in str(result.all_events)
    failed = remediation(monitored)
    assert any("CONTAINMENT FAILED" in note for note in failed.notes) and failed.contained is False
    assert not monitored.services.control.kill_switch(MODEL).disabled


def test_a_window_that_is_not_in_the_decision_log_acts_on_nothing(monitored: Monitored):
    bogus = dg.RunRequest(
        run_config={
            "ops": {f"{MODEL}__monitoring_report": {"config": {"first_seq": 1, "last_seq": 500, "stream": "live"}}}
        }
    )
    result = monitored.run(bogus)
    assert not result.success
    assert "no window 1-500 of model 'credit_scoring'" in str(result.all_events)
    assert len(monitored.services.control.deployments(MODEL)) == 2
    assert monitored.ledger(events.RemediationDecided) == []


def test_the_retraining_schedule_launches_a_run_that_authorises_and_ledgers_a_new_version(monitored: Monitored):
    schedule = monitored.defs.resolve_schedule_def(f"{MODEL}_retraining_schedule")
    # "0 3 * * 1" moved by credit_scoring's offset in the default 120-minute spread (sha256 of the name)
    assert schedule.cron_schedule == "11 3 * * 1" and schedule.execution_timezone == "UTC"
    with dg.build_schedule_context(
        instance=monitored.instance,
        resources=governance_resources(monitored.settings),
        scheduled_execution_time=datetime(2026, 11, 23, 3, tzinfo=UTC),
    ) as context:
        request = schedule(context)
    assert request.tags["governance/requested_by"] == "system" and not monitored.ledger(events.RetrainingRequested)
    assert monitored.run(request, job="retraining").success
    requested = monitored.ledger(events.RetrainingRequested)[-1]
    assert requested.trigger == "schedule" and requested.actor == "system"
    assert requested.scheduled_for == "2026-11-23T03:00:00+00:00"
    signed = monitored.services.statements.find(action="train", model=MODEL)[0]
    assert requested.statement == signed.digest and signed.signed.statement.principal == "system"
    launched = monitored.tick("retraining_requests")
    assert [r.partition_key for r in launched.run_requests] == ["credit_scoring-v3"]
    assert launched.run_requests[0].tags["governance/trigger"] == "schedule"
