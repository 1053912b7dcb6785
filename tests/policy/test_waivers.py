"""Waivers end to end: signed statements, the statement store, Cedar, the ledger, and the gate."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from governance import events
from governance.ledger import Ledger
from governance.policy.authz import VersionSubject
from governance.policy.bundle import PolicyBundle, PolicyError
from governance.policy.gate import evaluate_gate
from governance.policy.records import record_gate_decision, require_gate_decision
from governance.policy.waivers import WaiverRefused, grant_waiver, honoured_waivers
from governance.settings import Settings
from governance.timestamps import utc_now
from governance.trust.roster import Roster
from governance.trust.store import StatementStore

from .conftest import passing_evidence

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
    """One state dir: ledger, statement store, roster, keys, and a denied gate decision for version 7."""

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


@pytest.fixture
def world(settings, bundle, cast) -> World:
    return World(settings, bundle, cast)


def refused(world: World, **grant) -> str:
    with pytest.raises(WaiverRefused) as raised:
        world.grant(**grant)
    assert world.honoured() == []
    return str(raised.value)


def test_a_gate_decision_is_ledgered_and_required_before_a_waiver(world):
    (entry,) = world.events(events.GateDecided)
    assert entry.policy == world.bundle.digest and entry.allowed is False and entry.decision["allowed"] is False
    assert (entry.trained_by, entry.requested_by, entry.risk_tier) == (("dana",), ("rhea",), "high")
    require_gate_decision(world.ledger, "credit_scoring", "7")
    with pytest.raises(PolicyError, match="no release-gate decision for credit_scoring version 8"):
        require_gate_decision(world.ledger, "credit_scoring", "8")


def test_granted_waiver_is_signed_ledgered_and_honoured_by_the_gate(world):
    waiver = world.grant()
    assert (waiver.rule, waiver.granted_by, waiver.until) == (RULE, "carl", world.now + timedelta(days=10))
    (granted,) = world.events(events.WaiverGranted)
    assert granted.actor == "carl" and granted.rule == RULE and granted.allowed is True
    assert (granted.statement, granted.policy) == (waiver.statement_digest, world.bundle.digest)
    assert granted.rules == ("waivers.compliance_manager",)
    assert world.events(events.StatementRecorded)[0].statement == waiver.statement_digest

    honoured = world.honoured()
    assert honoured == [waiver]
    decision = evaluate_gate(world.bundle, UNFAIR, honoured, now=world.now)
    assert decision.allowed and decision.denials[0].waiver == waiver
    assert "WAIVED by carl" in decision.reasons()[0] and "remediation plan FR-12 agreed" in decision.reasons()[0]


def test_wrong_role_is_refused_with_a_reason_and_a_ledger_entry(world):
    message = refused(world, principal="ravi")
    assert "no rule permits ravi (roles: model_risk_approver) to waive credit_scoring version 7" in message
    (entry,) = world.events(events.WaiverRefused)
    assert entry.actor == "ravi" and entry.allowed is False


def test_self_waiver_is_refused(world):
    subject = replace(world.subject, requested_by=("carl",))
    with pytest.raises(WaiverRefused, match="Whoever trained or requested a version may not waive its rules"):
        world.grant(subject=subject)
    assert world.events(events.WaiverRefused)[0].rules == ("separation_of_duties.no_self_waiver",)


@pytest.mark.parametrize("days, granted", [(30, True), (30.5, False), (31, False)])
def test_waiver_longer_than_the_policy_maximum_is_refused(world, days, granted):
    if granted:
        assert world.grant(days=days).rule == RULE
        return
    assert "at most 30 days for a high-risk version" in refused(world, days=days)
    assert world.events(events.WaiverRefused)[0].rules == ("waivers.maximum_duration",)


def test_unwaivable_rule_is_refused(world):
    assert "marked @unwaivable" in refused(world, rule="data_quality.validation_passed")


def test_forged_signature_is_refused_by_the_store_and_ledgered(world):
    message = refused(world, key="dana")  # claims to be carl, signed with dana's key
    assert "signature does not verify with 'carl'" in message
    (entry,) = world.events(events.StatementRefused)
    assert entry.actor == "carl" and entry.statement_action == "waive"
    assert world.events(events.WaiverDecided) == []


def test_unknown_rule_or_past_end_is_bad_input(world):
    with pytest.raises(PolicyError, match="unknown rule 'fairness.nonsense'"):
        world.grant(rule="fairness.nonsense")
    with pytest.raises(PolicyError, match="not a release-gate rule"):
        world.grant(rule="authorisation.deploy")
    with pytest.raises(Exception, match="must end after it is granted"):
        world.grant(days=-1)
    assert world.ledger.size() == 1  # only the gate decision


def test_expiry_takes_effect_without_anyone_acting(world):
    waiver = world.grant(days=2)
    assert world.honoured(after=timedelta(days=1, hours=23)) == [waiver]
    assert world.honoured(after=timedelta(days=2)) == []
    later = world.now + timedelta(days=2, seconds=1)
    assert not evaluate_gate(
        world.bundle, UNFAIR, world.honoured(after=timedelta(days=2, seconds=1)), now=later
    ).allowed


def test_waiver_counts_only_for_its_version_and_rule(world):
    waiver = world.grant()
    other_version = replace(world.subject, version="8")
    assert world.honoured(subject=other_version) == []
    assert not evaluate_gate(world.bundle, replace(UNFAIR, version="8"), [waiver], now=world.now).allowed
    other_rule = replace(UNFAIR, di_ci_high_min=1.0, equalized_odds_ci_low_max=0.2)
    decision = evaluate_gate(world.bundle, other_rule, [waiver], now=world.now)
    assert not decision.allowed and decision.denials[0].rule == "fairness.equalized_odds"


def test_a_waiver_stops_counting_when_its_grantor_loses_the_role(world, settings):
    world.grant()
    demoted = [
        replace(p, roles=frozenset({"auditor"})) if p.name == "carl" else p for p in world.roster.principals.values()
    ]
    roster = Roster.write(settings.home / "roster-v2.yaml", version=2, principals=demoted)
    assert world.honoured(roster=roster) == []


def test_a_waiver_stops_counting_when_policy_makes_its_rule_unwaivable(world, policy_copy):
    world.grant()
    path = policy_copy / "fairness.cedar"
    path.write_text(
        path.read_text().replace('@id("fairness.disparate_impact")', '@id("fairness.disparate_impact")\n@unwaivable')
    )
    assert world.honoured(bundle=PolicyBundle.load(policy_copy)) == []


def test_a_statement_cedar_refused_never_counts_even_if_it_would_pass_today(world, settings):
    with pytest.raises(WaiverRefused):
        world.grant(principal="audrey")
    promoted = [
        replace(p, roles=frozenset({"compliance_manager"})) if p.name == "audrey" else p
        for p in world.roster.principals.values()
    ]
    roster = Roster.write(settings.home / "roster-v2.yaml", version=2, principals=promoted)
    assert world.honoured(roster=roster) == []  # never granted: no "waiver.granted" entry


def test_waivers_on_postgresql(postgres_url, tmp_path, bundle, cast):
    settings = Settings(home=tmp_path / "govern", config_path=tmp_path / "governance.yaml", database_url=postgres_url)
    world = World(settings, bundle, cast)
    waiver = world.grant()
    assert world.honoured() == [waiver]
    with pytest.raises(WaiverRefused):
        world.grant(principal="ravi")
    assert [events.event_type(e.action) for e in world.ledger.entries()] == [
        events.GateDecided,
        events.StatementRecorded,
        events.WaiverGranted,
        events.StatementRecorded,
        events.WaiverRefused,
    ]
    assert world.ledger.verify().ok
