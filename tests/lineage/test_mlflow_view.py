"""MLflow as a user of MLflow sees the governed history, and what its tags are worth: nothing as authority.

The lineage world (v1 and v2 each trained, gated, approved and deployed through the real graph, then a
signed rollback to v1) read with MlflowClient, as someone browsing the tracking server would: evaluation
metrics on each version's run equal the reports whose digests the ledger holds, the logged model carries a
signature, the registered model and its versions are described, and each deployed version is tagged from
its verified record (evidence pack, approver, approval statement, Dagster run). What an insider rewriting
those tags achieves (nothing) is in the attack suite, tests/attacks/test_artifacts.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.models import Model

from governance import events
from governance.release.services import Services
from tests.lineage.world import APPROVERS, MODEL, V1, V2, World

pytestmark = pytest.mark.slow


def _client(world: World) -> MlflowClient:
    return Services(world.settings).registry.client


def _report(world: World, version: str, name: str) -> dict:
    """The report file whose digest the ledger holds for `version` (checked here, as an auditor would)."""
    from governance.digests import file_sha256

    path = world.settings.model_dir(MODEL, version) / f"{name}.json"
    recorded = world.services.ledger.latest(events.REPORT_EVENTS[name], model=MODEL, version=version)
    assert file_sha256(path) == recorded.report
    return json.loads(path.read_bytes())


@pytest.mark.parametrize("version", [V1, V2])
def test_each_run_carries_its_evaluation_metrics_equal_to_the_ledgered_reports(world, version):
    client = _client(world)
    registered = client.get_model_version(MODEL, version.rsplit("v", 1)[1])
    metrics = client.get_run(registered.run_id).data.metrics
    performance = _report(world, version, "performance")
    for name in ("auc", "gini", "ks", "brier"):
        assert metrics[f"performance/{name}"] == pytest.approx(performance[name]), name
    assert metrics["performance/calibration_error"] == pytest.approx(
        performance["calibration"]["expected_calibration_error"]
    )
    fairness = _report(world, version, "fairness")
    for attribute in fairness["gated_attributes"]:
        groups = fairness["attributes"][attribute]["groups"].values()
        lowest = min(g["disparate_impact"] for g in groups if g.get("disparate_impact") is not None)
        assert metrics[f"fairness/min_disparate_impact/{attribute}"] == pytest.approx(lowest)
        assert metrics[f"fairness/equalized_odds_difference/{attribute}"] == pytest.approx(
            fairness["attributes"][attribute]["equalized_odds_difference"]
        )


def test_the_logged_model_has_a_signature_of_the_features_and_the_score(world, tmp_path: Path):
    client = _client(world)
    registered = client.get_model_version(MODEL, "1")
    signature = Model.load(client.download_artifacts(registered.run_id, "model/MLmodel", str(tmp_path))).signature
    assert signature is not None, f"{registered.source} was saved without a signature"
    features = world.life.config.model(MODEL).feature_columns
    assert signature.inputs.input_names() == list(features)
    assert len(signature.outputs.inputs) == 1  # one column: the probability of the unfavourable outcome
    assert not set(world.life.config.model(MODEL).protected_columns) & set(signature.inputs.input_names())


def test_the_model_and_its_versions_are_described_and_tagged_from_the_verified_record(world):
    client = _client(world)
    assert "signed, verified deployment or rollback" in client.get_registered_model(MODEL).description
    ledger = world.services.ledger
    for version in (V1, V2):
        number = version.rsplit("v", 1)[1]
        described = client.get_model_version(MODEL, number)
        granted = ledger.latest(events.ApprovalGranted, model=MODEL, version=version)
        completed = ledger.latest(events.DeploymentCompleted, model=MODEL, version=version)
        tags = described.tags
        assert tags["governance.evidence_pack"] == granted.evidence_pack == completed.evidence_pack
        assert tags["governance.approver"] == APPROVERS[version] == granted.actor
        assert tags["governance.approval_statement"] == granted.statement == completed.approval
        assert tags["governance.policy_digest"] == granted.policy
        run = world.life.instance.get_run_by_id(tags["governance.dagster_run"])
        assert run is not None and run.tags["dagster/partition"] == version  # the release run that deployed it
        assert f"approved by {APPROVERS[version]}" in described.description
        assert granted.evidence_pack[:12] in described.description and run.run_id in described.description
