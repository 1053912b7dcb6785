"""Release-gate decisions in the audit ledger, and reading back what the gate saw.

Every gate decision is one "gate.decision" entry: subject {model, version},
digests {policy, evidence}, payload = the decision's JSON. Commands that act
on a version later (waive) take its risk tier, trainers and requesters from
the latest such entry rather than from anyone's say-so.
"""

from __future__ import annotations

from governance.ledger import Ledger, LedgerEntry
from governance.policy.authz import VersionSubject
from governance.policy.bundle import PolicyError
from governance.policy.gate import RELEASE_GATE, GateDecision

GATE_DECISION = "gate.decision"


def record_gate_decision(ledger: Ledger, decision: GateDecision) -> LedgerEntry:
    return ledger.append(
        actor=f"system:{RELEASE_GATE}",
        action=GATE_DECISION,
        subject={"model": decision.model, "version": decision.version},
        digests={"policy": decision.policy_digest, "evidence": decision.evidence_digest},
        payload=decision.to_dict(),
    )


def gate_subject(ledger: Ledger, model: str, version: str) -> VersionSubject:
    """The version as its latest recorded gate decision describes it."""
    entries = ledger.entries(model=model, version=version, action=GATE_DECISION, limit=1)
    if not entries or entries[-1].payload is None:
        raise PolicyError(f"no release-gate decision for {model} version {version} in the ledger "
                          f"({ledger.engine.url.render_as_string(hide_password=True)}): run the release gate first")
    seen = entries[-1].payload
    return VersionSubject(model, version, seen["risk_tier"], tuple(seen["trained_by"]), tuple(seen["requested_by"]))
