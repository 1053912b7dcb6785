"""Release-gate decisions in the audit ledger, and reading back what the gate saw.

Every gate decision is one `events.GateDecided`: subject {model, version},
digests {policy, evidence}, facts (allowed, risk tier, trainers, requesters) and
the decision's JSON as its detail. An entry says that a version was gated; its
facts authorise nothing (anyone who can write the ledger can append one): a
waiver is judged on the version as the gate will judge it when it runs again
(`governance.release.requests.version_subject`), an approval on the gate
decision sealed in the evidence pack.
"""

from __future__ import annotations

from governance.events import GateDecided
from governance.ledger import Ledger, LedgerEntry
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


def require_gate_decision(ledger: Ledger, model: str, version: str) -> None:
    """Refuse to act on a version the release gate has not judged yet."""
    if ledger.latest(GateDecided, model=model, version=version) is None:
        raise PolicyError(
            f"no release-gate decision for {model} version {version} in the ledger "
            f"({ledger.engine.url.render_as_string(hide_password=True)}): run the release gate first"
        )
