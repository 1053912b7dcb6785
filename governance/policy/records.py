"""Release-gate decisions in the audit ledger, and reading back what the gate saw.

Every gate decision is one "gate.decision" entry: subject {model, version},
digests {policy, evidence}, payload = the decision's JSON. Commands that act
on a version later (waive) take its risk tier and trainers from the latest
such entry, and its requesters from every entry that ever named one, rather
than from anyone's say-so.
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
    """The version as its latest recorded gate decision describes it, with everyone who ever asked for it."""
    entries = ledger.entries(model=model, version=version, action=GATE_DECISION, limit=1)
    if not entries or entries[-1].payload is None:
        raise PolicyError(f"no release-gate decision for {model} version {version} in the ledger "
                          f"({ledger.engine.url.render_as_string(hide_password=True)}): run the release gate first")
    seen = entries[-1].payload
    return VersionSubject(model, version, seen["risk_tier"], tuple(seen["trained_by"]),
                          tuple(sorted(requesters(ledger, model, version))))


def requesters(ledger: Ledger, model: str, version: str) -> set[str]:
    """Everyone any ledger entry of the version names as having requested it (gate decisions, approval
    requests). A run tag names the requester, so a later run launched without the tag frees nobody."""
    return {name for entry in ledger.entries(model=model, version=version)
            for name in (entry.payload or {}).get("requested_by", ())}
