"""`govern lineage`: every step of a version's life, each with a ledger entry whose proof verifies. What lineage
finds in a rewritten ledger entry or a changed sealed file is in the attack suite (tests/attacks)."""

import json

import pytest

from governance import events
from governance.ledger import InclusionProof
from governance.lineage.chain import LineageError, version_lineage
from tests.lineage.conftest import govern
from tests.lineage.world import MODEL, V1, V2

pytestmark = pytest.mark.slow


def lineage_of(world, version=V1) -> dict:
    result = govern(world.settings, "lineage", MODEL, version, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_every_step_is_named_with_its_facts(world):
    doc = lineage_of(world)
    services = world.services
    registered = services.registry.version(MODEL, 1)
    assert doc["summary"]["status"] == "champion" and doc["findings"] == []
    assert doc["data"]["dvc_md5"] == registered.tags["governance.data_md5"]
    assert doc["data"]["source"].startswith("generator(") and doc["data"]["rows"] == 6000
    assert doc["validation"]["passed"] is True
    training = doc["training"]
    assert training["mlflow_run_id"] == registered.run_id
    assert training["artifact_sha256"] == registered.artifact_sha256
    assert training["code_version"].startswith(("git:", "package:"))
    assert training["params"]["estimator.kind"] == "hist_gradient_boosting"
    assert {r["report"] for r in doc["reports"]} == {"performance", "fairness", "explainability", "model_card"}
    assert all(r["sealed"] for r in doc["reports"])
    assert doc["gate"]["allowed"] and doc["gate"]["policy_digest"] == doc["evidence_pack"]["facts"]["policy_digest"]
    assert doc["evidence_pack"]["status"] == "verified"
    [approval] = doc["approvals"]
    assert (approval["approver"], approval["roles"], approval["comment"]) == (
        "ravi",
        ["model_risk_approver"],
        f"reviewed {V1}",
    )
    assert approval["relied_on_by_deployments"] == [1, 3]  # the deployment, and the rollback back to v1
    moves = {m["id"]: m for m in doc["deployments"]}
    assert moves[1]["kind"] == "deploy" and moves[1]["automated"] and moves[1]["to"] == V1
    assert moves[2]["direction"] == "away from this version" and moves[2]["to"] == V2
    assert (moves[3]["kind"], moves[3]["actor"], moves[3]["reason"]) == ("rollback", "paul", "v2 under investigation")
    [signed] = services.statements.find(action="rollback", model=MODEL)
    assert moves[3]["statement_digest"] == signed.digest
    assert moves[3]["entries"][0]["action"] == "statement.recorded"  # the signed rollback, then its steps
    assert [(k["state"], k["by"]) for k in doc["kill_switch"]["events"]] == [("on", "bea"), ("off", "bea")]


def test_every_entry_is_cited_with_a_proof_that_verifies(world):
    doc = lineage_of(world)
    ledger = world.services.ledger
    size, root = doc["ledger"]["size"], doc["ledger"]["root"]
    assert root == ledger.root(size)
    citations = _citations(doc)
    own = {e.seq for e in ledger.entries(model=MODEL, version=V1) if e.seq <= size}
    assert own <= set(citations)
    for seq, citation in citations.items():
        assert citation["verified"]
        proof = InclusionProof(
            seq=seq,
            size=size,
            entry_hash=ledger.entry(seq).entry_hash,
            path=tuple(citation["inclusion_proof"]),
            root=root,
        )
        assert proof.verify()


def test_the_human_lineage_reads_step_by_step(world):
    result = govern(world.settings, "lineage", MODEL, "2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{V2}: not the champion: {V1} is (rollback at {_rollback_time(world)})"
    for label in ("data", "validation", "training", "report", "gate", "evidence", "approval", "deploy", "rollback"):
        assert any(line.strip().startswith(label) and line.endswith("ok]") for line in lines), label
    assert "granted by rhea (model_risk_approver)" in result.output
    assert "#3 credit_scoring-v2 -> credit_scoring-v1 by paul" in result.output
    assert "findings    none" in result.output


def test_unknown_versions_are_refused_by_name(world):
    with pytest.raises(LineageError, match="credit_scoring credit_scoring-v9: no ledger entry names this version"):
        version_lineage(world.services, MODEL, f"{MODEL}-v9")
    result = govern(world.settings, "lineage", MODEL, "other_model-v1")
    assert result.exit_code != 0 and "other_model-v1 is not a version of credit_scoring" in str(result.exception)


def _citations(doc: dict) -> dict[int, dict]:
    """Every ledger citation anywhere in a lineage document, by sequence number."""
    found = {}

    def walk(value):
        if isinstance(value, dict):
            if "entry_hash" in value and "inclusion_proof" in value:
                found[value["seq"]] = value
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(doc)
    return found


def _rollback_time(world) -> str:
    """When the rollback completed, by the ledger (lineage never takes it from the deployments rows)."""
    return world.services.ledger.latest(events.RollbackCompleted, model=MODEL).ts
