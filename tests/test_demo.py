"""The demo narrates a gate that stops a candidate its story needs, instead of failing further on."""

import pytest

from governance.config import load_config
from governance.errors import GovernanceError
from governance.settings import Settings
from governance_assets.demo import BIASED, Demo
from tests.helpers import REPO, SMALL_CONFIG


def test_a_candidate_stopped_at_its_gate_is_explained_and_ends_the_story(tmp_path):
    settings = Settings(home=tmp_path / "state", config_path=SMALL_CONFIG, policies_override=REPO / "policies")
    config = load_config(SMALL_CONFIG)
    said: list[str] = []
    demo = Demo(settings, config, config.model("credit_scoring"), said.append)
    key, result = demo.candidate(BIASED)  # historically biased data: the fairness rules deny it
    with pytest.raises(GovernanceError, match=f"{key}: the biased candidate did not reach its approval request"):
        demo.pending_approval(key, result, "biased candidate")
    assert said[0] == f"   {key}: release gate DENIED (policy {demo.gate(key)['policy_digest'][:12]})"
    assert any("fairness.disparate_impact" in line and "requires di_ci_high_min >= 0.8000" in line for line in said[1:])
    demo.instance.dispose()
