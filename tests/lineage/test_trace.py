"""End to end: decisions served by the real scoring API, a signed rollback, then `govern trace`.

A decision made before the rollback and one made after must each name the
version that made it, that version's approver and its training data's md5, on
the embedded default and on PostgreSQL.
"""

import json

import pytest

from governance.digests import digest_of
from tests.lineage.conftest import govern
from tests.lineage.world import APPROVERS, MODEL, V1, V2

pytestmark = pytest.mark.slow


def trained_on(world, version: str) -> str:
    """The data md5 the training asset tagged the registered version with (not read by way of the ledger)."""
    number = int(version.rsplit("-v", 1)[1])
    return world.services.registry.version(MODEL, number).tags["governance.data_md5"]


@pytest.mark.parametrize("phase, version", [("before_rollback", V2), ("after_rollback", V1)])
def test_a_decision_names_its_version_approver_and_data(any_world, phase, version):
    world = any_world
    assert trained_on(world, V1) != trained_on(world, V2)  # the two versions learned from different snapshots
    for answer in world.decisions[phase]:
        result = govern(world.settings, "trace", answer["decision_id"], "--json")
        assert result.exit_code == 0, result.output
        traced = json.loads(result.output)
        decision, lineage = traced["decision"], traced["lineage"]
        assert decision["version"] == version == lineage["version"]
        assert decision["input_digest"] == digest_of(world.sent[answer["decision_id"]])
        assert decision["reasons"] == answer["reasons"] and decision["outcome"] == answer["outcome"]
        assert decision["reasons_withheld"] == 0  # the small model has no flagged proxy and no protected feature
        assert traced["approval"]["approver"] == APPROVERS[version] == lineage["summary"]["approver"]
        assert traced["approval"]["roles"] == ["model_risk_approver"]
        assert lineage["summary"]["data_md5"] == trained_on(world, version) == lineage["data"]["dvc_md5"]
        assert lineage["findings"] == [] and traced["findings"] == []
        assert traced["kill_switch"]["on"] is False
        assert traced["rollback_in_force"] is (phase == "after_rollback")
        assert traced["in_force"]["actor"] == ("paul" if phase == "after_rollback" else "system:production_deployment")
        assert "features" not in decision and "protected" not in decision


def test_the_human_trace_says_what_was_in_force(world):
    before = govern(world.settings, "trace", world.decisions["before_rollback"][0]["decision_id"])
    after = govern(world.settings, "trace", world.decisions["after_rollback"][0]["decision_id"])
    assert before.exit_code == after.exit_code == 0
    assert f"by {V2}" in before.output and "approved by rhea (model_risk_approver)" in before.output
    assert "ROLLBACK IN FORCE" not in before.output
    assert "(0 withheld as a protected attribute or flagged proxy)" in before.output
    assert f"in force: rollback #3 to {V1} by paul" in after.output and "ROLLBACK IN FORCE" in after.output
    assert "approved by ravi (model_risk_approver)" in after.output
    assert f"DVC md5 {trained_on(world, V1)}" in after.output


def test_a_decision_in_the_safe_state_says_who_stopped_the_model(world):
    answer = world.decisions["kill_switch"][0]
    traced = json.loads(govern(world.settings, "trace", answer["decision_id"], "--json").output)
    assert traced["decision"]["outcome"] == "refer" and traced["decision"]["version"] is None
    assert traced["decision"]["safe_state_reason"] == "kill switch on: complaints spike"
    assert traced["decision"]["reasons_withheld"] is None  # no reasons were screened
    assert (
        "safe state: kill switch on: complaints spike" in govern(world.settings, "trace", answer["decision_id"]).output
    )
    assert traced["kill_switch"]["on"] is True
    change = traced["kill_switch"]["last_change"]
    assert (change["state"], change["by"], change["reason"]) == ("on", "bea", "complaints spike")
    assert traced["lineage"] is None


def test_an_unknown_decision_is_refused_by_name(world):
    result = govern(world.settings, "trace", "no-such-decision")
    assert result.exit_code != 0
    assert "decision 'no-such-decision' is not in the decision log" in str(result.exception)
