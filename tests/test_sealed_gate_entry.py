"""approval_request seals, as the fact `gate_ledger_entry`, the ledger entry that recorded exactly the gate decision
it seals: found in the ledger (the gate's output is the decision itself), never the latest decision by default."""

from dataclasses import replace
from datetime import timedelta

import pytest

from governance.errors import GovernanceError
from governance.policy.gate import GateDecision
from governance.policy.records import record_gate_decision
from governance.release.services import Services
from governance.state import prepare
from governance.timestamps import utc_now, utc_timestamp
from governance_assets.release.assets import recorded_gate_entry

VERSION = "credit_scoring-v1"


def test_the_sealed_gate_entry_is_the_one_that_recorded_this_decision(settings):
    prepare(settings)
    services = Services(settings)
    model = services.governed_model("credit_scoring")
    first = GateDecision(
        model=model.name,
        version=VERSION,
        risk_tier=model.risk_tier,
        trained_by=("dana",),
        requested_by=("dana",),
        allowed=True,
        policy_digest="a" * 64,
        evidence_digest="b" * 64,
        decided_at=utc_timestamp(utc_now() - timedelta(minutes=5)),
        valid_until=None,
        rules_evaluated=("fairness.disparate_impact",),
        denials=(),
        errors=(),
    )
    again = replace(first, decided_at=utc_timestamp(utc_now()))  # the gate run again on the same evidence
    other = replace(first, evidence_digest="c" * 64)  # a decision the ledger never recorded
    entries = [record_gate_decision(services.ledger, d) for d in (first, again)]

    for decision, entry in zip((first, again), entries, strict=True):
        assert recorded_gate_entry(services, model, VERSION, decision.to_dict()).entry_hash == entry.entry_hash
    with pytest.raises(GovernanceError, match="no release-gate decision in the ledger is the one in gate_decision"):
        recorded_gate_entry(services, model, VERSION, other.to_dict())

    # Retention removed the decisions' detail: the digests and the outcome still identify the decision.
    assert services.ledger.expire_payloads(utc_now() + timedelta(seconds=1)) >= 2
    assert recorded_gate_entry(services, model, VERSION, first.to_dict()).entry_hash == entries[-1].entry_hash
    with pytest.raises(GovernanceError, match="no release-gate decision"):
        recorded_gate_entry(services, model, VERSION, other.to_dict())
    with pytest.raises(GovernanceError, match="no release-gate decision"):
        recorded_gate_entry(services, model, VERSION, {**first.to_dict(), "allowed": False})
