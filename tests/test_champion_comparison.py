"""A new version gated against a champion trained on other features: the path by which a proxy leaves production.

v1 (with occupation_group) is approved and deployed; v2's config excludes occupation_group. The gate scores the
champion with the features its approved artifact was trained on, over v2's test rows, and says so.
"""

import json

import pytest

from governance.release.approvals import decide
from governance.trust.demo import demo_principals
from governance.trust.keys import load_private_key
from tests.helpers import Lifecycle, small_model, write_config

pytestmark = pytest.mark.slow
MODEL = "credit_scoring"
DROPPED = "occupation_group"


def test_a_version_that_drops_a_feature_is_gated_against_the_champion_trained_with_it(tmp_path, lifecycle):
    first = lifecycle()
    demo_principals(first.settings)
    v1, result = first.candidate(requested_by="dana")
    assert result.success and result.output_for_node(f"{MODEL}__release_gate")["allowed"]
    v1_auc = result.output_for_node(f"{MODEL}__trained_model")["test_auc"]
    assert DROPPED in first.config.model(MODEL).feature_columns
    decide(first.services, MODEL, v1, "approve", "ravi", load_private_key(first.settings.keys_dir / "ravi.key"))
    release = first.defs.resolve_job_def(f"{MODEL}_release")
    assert release.execute_in_process(instance=first.instance, partition_key=v1).success
    assert first.registry.champion(MODEL) == 1

    config = write_config(tmp_path / "v2.yaml", {MODEL: small_model(exclude=["age", DROPPED])})
    second = Lifecycle(first.settings.home, config)
    assert DROPPED not in second.config.model(MODEL).feature_columns
    v2, result = second.candidate(requested_by="dana")
    assert result.success and v2 == f"{MODEL}-v2"  # gated, not crashed on the column the champion needs
    gate = result.output_for_node(f"{MODEL}__release_gate")
    decision = json.loads((second.settings.model_dir(MODEL, v2) / "gate_decision.json").read_bytes())
    assert decision["allowed"] == gate["allowed"] and not decision["errors"]
    [record] = second.materialized(MODEL, "release_gate", v2)
    basis = record.asset_materialization.metadata["champion_comparison"].value
    features = len(first.config.model(MODEL).feature_columns)
    assert basis.startswith(f"champion {v1} AUC {v1_auc:.4f}, scored with the {features} features it was trained on")
    assert basis.endswith(f"test rows; this version drops {DROPPED}")  # v1's own test rows: the same AUC
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "policy_decision"]
    assert basis in check.description  # the gate's stated reasons say how the champion was compared
