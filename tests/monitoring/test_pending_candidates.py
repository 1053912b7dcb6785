"""A candidate waiting for approval while a newer drift is alerted is marked as predating it, in `govern status`
(JSON and text) and on the console's model page, where the approver sees the request."""

from __future__ import annotations

from html import unescape

from fastapi.testclient import TestClient

from governance import events
from governance.config import load_config
from governance.console.app import create_console
from governance.release.outcome import candidate_outcome, outcome_text
from governance_assets.common import versions
from programs.dagster_records import DagsterRecords
from programs.lifecycle import _status_text
from programs.status import ASSETS, model_status
from tests.lineage.conftest import govern
from tests.monitoring.conftest import Monitored
from tests.monitoring.support import request_candidate
from tests.monitoring.test_remediation import alert


def _waiting(monitored: Monitored) -> tuple[dict, dict]:
    with DagsterRecords(monitored.settings, [monitored.model.name], ASSETS) as dagster:
        found = model_status(dagster, monitored.services, monitored.model)
    (waiting,) = found["awaiting_approval"]
    return found, waiting


def _console(monitored: Monitored) -> TestClient:
    return TestClient(create_console(monitored.settings, load_config(monitored.settings.config_path)))


def test_a_candidate_trained_before_a_newer_drift_says_so(monitored: Monitored):
    candidate = request_candidate(monitored.settings, monitored.model, seed=11)
    monitored.instance.add_dynamic_partitions(versions(monitored.model).name, [candidate])
    found, waiting = _waiting(monitored)
    assert waiting["version"] == candidate and "predates_drift" not in waiting
    assert "PREDATES DRIFT" not in _status_text([found])
    assert candidate_outcome(monitored.services, monitored.model.name, candidate)["predates_drift"] == []

    monitored.send(seed=300, drift=0.3)  # a drift the candidate's data never saw
    assert monitored.run(alert(monitored, "data_drift")).success
    found, waiting = _waiting(monitored)
    (drift,) = waiting["predates_drift"]
    assert (drift["version"], drift["window"]) == ("credit_scoring-v2", "1-500") and drift["rules"]
    assert drift["seq"] == monitored.ledger(events.MonitoringAlert)[-1].seq
    said = f"PREDATES DRIFT alerted at {drift['at']} on credit_scoring-v2 window 1-500 ({', '.join(drift['rules'])})"
    assert said in _status_text([found])
    shown = _console(monitored).get(f"/models/{monitored.model.name}")
    assert shown.status_code == 200 and said in unescape(shown.text)  # where an approver looks in the browser
    outcome = candidate_outcome(monitored.services, monitored.model.name, candidate)  # what `govern train` prints
    assert outcome["predates_drift"] == [drift] and said in outcome_text(outcome)
    approved = govern(monitored.settings, "approve", monitored.model.name, candidate, "--as", waiting["may_approve"][0])
    assert approved.exit_code == 0, approved.output
    assert f"WARNING: {said}" in approved.output  # the approver is told again when signing


def test_a_candidate_trained_after_the_drift_is_not_marked(monitored: Monitored):
    monitored.send(seed=300, drift=0.3)
    assert monitored.run(alert(monitored, "data_drift")).success
    candidate = request_candidate(monitored.settings, monitored.model, seed=11)
    monitored.instance.add_dynamic_partitions(versions(monitored.model).name, [candidate])
    _, waiting = _waiting(monitored)
    assert waiting["version"] == candidate and "predates_drift" not in waiting
