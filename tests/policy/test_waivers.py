"""Waivers end to end: signed statements, the statement store, Cedar, the ledger, and the gate. Waivers refused,
abused or forged are in the attack suite (tests/attacks/test_waivers.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from governance import events
from governance.policy.bundle import PolicyError
from governance.policy.gate import evaluate_gate
from governance.policy.records import require_gate_decision
from governance.policy.waivers import WaiverRefused
from governance.settings import Settings

from .conftest import RULE, UNFAIR, World


@pytest.fixture
def world(settings, bundle, cast) -> World:
    return World(settings, bundle, cast)


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
