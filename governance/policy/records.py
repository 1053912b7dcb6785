"""Release-gate decisions in the audit ledger, and reading back what the gate saw.

Every gate decision is one `events.GateDecided`: subject {model, version},
digests {policy, evidence}, facts (allowed, risk tier, trainers, requesters) and
the decision's JSON as its detail. Commands that act
on a version later (waive) take its risk tier and trainers from the latest
such entry rather than from anyone's say-so; its requesters are the verified
signers of its candidate requests (`governance.release.requests`), never a
gate entry's copy.
"""

from __future__ import annotations

from collections.abc import Sequence

from governance.events import GateDecided
from governance.ledger import Ledger, LedgerEntry
from governance.policy.authz import VersionSubject
from governance.policy.bundle import PolicyError
from governance.policy.gate import RELEASE_GATE, GateDecision


def record_gate_decision(ledger: Ledger, decision: GateDecision) -> LedgerEntry:
    return ledger.append(
        GateDecided(
            actor=f"system:{RELEASE_GATE}",
            model=decision.model,
            version=decision.version,
            policy=decision.policy_digest,
            evidence=decision.evidence_digest,
            allowed=decision.allowed,
            risk_tier=decision.risk_tier,
            trained_by=tuple(decision.trained_by),
            requested_by=tuple(decision.requested_by),
            decision=decision.to_dict(),
        )
    )


def gate_subject(
    ledger: Ledger, model: str, version: str, requested_by: Sequence[str], business_owner: str | None
) -> VersionSubject:
    """The version as its latest recorded gate decision describes it, with its verified requesters and the
    business owner the model's config names."""
    seen = ledger.latest(GateDecided, model=model, version=version)
    if seen is None:
        raise PolicyError(
            f"no release-gate decision for {model} version {version} in the ledger "
            f"({ledger.engine.url.render_as_string(hide_password=True)}): run the release gate first"
        )
    return VersionSubject(
        model, version, seen.risk_tier, tuple(seen.trained_by), tuple(sorted(requested_by)), business_owner
    )
