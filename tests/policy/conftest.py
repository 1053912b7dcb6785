"""The repository's policy bundle, a passing evidence baseline, and a writable copy of the policies."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from governance.policy.bundle import PolicyBundle
from governance.policy.evidence import GateEvidence

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def passing_evidence(**changes) -> GateEvidence:
    """Evidence that passes every gate rule in every risk tier; `changes` override fields."""
    base = GateEvidence(
        model="credit_scoring",
        version="7",
        risk_tier="high",
        validation_passed=True,
        auc=0.80,
        ks=0.40,
        champion_auc=None,
        di_ci_high_min=1.05,
        di_ci_low_max=0.95,
        di_point_min=0.97,
        di_point_max=1.01,
        equalized_odds_difference_max=0.03,
        equalized_odds_ci_low_max=0.01,
        proxy_strength_max=0.05,
        proxy_weighted_max=0.05,
        card_complete=True,
        card_missing_sections=[],
        data_age_days=10,
        trained_by=["dana"],
        requested_by=["dana"],
        context={},
    )
    return replace(base, **changes)


@pytest.fixture(scope="session")
def bundle() -> PolicyBundle:
    return PolicyBundle.load(POLICIES)


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    """A copy of the schema and the *.cedar files to edit (the roster is not needed)."""
    target = tmp_path / "policies"
    target.mkdir()
    for path in POLICIES.iterdir():
        if path.suffix in (".cedar", ".cedarschema"):
            shutil.copy(path, target / path.name)
    return target


@pytest.fixture
def cast(settings):
    """The demo principals: a real roster file and real Ed25519 keys in the test's state dir."""
    from governance.trust.demo import DEMO_CAST, demo_key_path, demo_principals
    from governance.trust.keys import load_private_key
    from governance.trust.roster import Roster

    roster = Roster.load(demo_principals(settings))
    return roster, {name: load_private_key(demo_key_path(settings, name)) for name in DEMO_CAST}
