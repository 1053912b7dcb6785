"""The repository's policy bundle, a passing evidence baseline, a writable copy of the policies, and a state with a
denied gate decision to waive."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from governance import events
from governance.ledger import Ledger
from governance.policy.authz import VersionSubject
from governance.policy.bundle import PolicyBundle
from governance.policy.evidence import GateEvidence
from governance.policy.gate import evaluate_gate
from governance.policy.records import record_gate_decision
from governance.policy.waivers import WaiverRefused, grant_waiver, honoured_waivers
from governance.settings import Settings
from governance.timestamps import utc_now
from governance.trust.store import StatementStore

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
    return demo_cast(settings)


def demo_cast(settings: Settings):
    """The demo roster (written into the state dir) and the demo principals' private keys."""
    from governance.trust.demo import DEMO_CAST, demo_key_path, demo_principals
    from governance.trust.keys import load_private_key
    from governance.trust.roster import Roster

    roster = Roster.load(demo_principals(settings))
    return roster, {name: load_private_key(demo_key_path(settings, name)) for name in DEMO_CAST}


RULE = "fairness.disparate_impact"
UNFAIR = passing_evidence(
    version="7",
    di_ci_high_min=0.70,
    di_point_min=0.62,
    trained_by=["dana"],
    requested_by=["rhea"],
    context={"di_ci_high_min": "sex=F vs M: 0.62 [0.55, 0.70]"},
)


class World:
    """One state dir: ledger, statement store, roster, keys, and a denied gate decision for version 7 (the waiver
    tests here and in the attack suite, tests/attacks/test_waivers.py)."""

    def __init__(self, settings: Settings, bundle: PolicyBundle, cast) -> None:
        self.settings, self.bundle = settings, bundle
        self.roster, self.keys = cast
        self.ledger = Ledger.for_settings(settings)
        self.store = StatementStore(settings.ledger_url, self.ledger)
        self.now = utc_now()
        record_gate_decision(self.ledger, evaluate_gate(bundle, UNFAIR, now=self.now))
        # The version as the gate judges it: the config's tier and data scientist, rhea's verified request.
        self.subject = VersionSubject("credit_scoring", "7", "high", ("dana",), ("rhea",), "bea")

    def grant(
        self,
        principal: str = "carl",
        *,
        rule: str = RULE,
        days: float = 10,
        key: str | None = None,
        subject: VersionSubject | None = None,
        bundle: PolicyBundle | None = None,
    ):
        return grant_waiver(
            bundle=bundle or self.bundle,
            roster=self.roster,
            store=self.store,
            subject=subject or self.subject,
            rule_id=rule,
            until=self.now + timedelta(days=days),
            reason="remediation plan FR-12 agreed",
            principal=principal,
            private_key=self.keys[key or principal],
            now=self.now,
        )

    def honoured(self, *, after: timedelta = timedelta(0), subject=None, roster=None, bundle=None):
        return honoured_waivers(
            bundle=bundle or self.bundle,
            roster=roster or self.roster,
            store=self.store,
            subject=subject or self.subject,
            now=self.now + after,
        )

    def events(self, kind: type[events.E]) -> list[events.E]:
        return self.ledger.events(kind)


def refused(world: World, **grant) -> str:
    with pytest.raises(WaiverRefused) as raised:
        world.grant(**grant)
    assert world.honoured() == []
    return str(raised.value)
