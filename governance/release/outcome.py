"""Where a candidate version stands after its run, for people: the gate's outcome with its reasons, who asked
for it, and the exact next command. `govern train` prints it when its run ends; `govern status` shows it."""

from __future__ import annotations

from governance import events
from governance.errors import GovernanceError
from governance.monitoring.recorded import drift_since_trained, predates_drift_text
from governance.policy.gate import describe_finding
from governance.release.approvals import latest_request, who_may_approve
from governance.release.requests import requesters
from governance.release.services import Services


def gate_reasons(gate: events.GateDecided) -> list[str]:
    """One line per rule that denied (waived or not), with its findings rounded as the card rounds them; once
    retention expired the entry's payload, a line saying so (the reasons were forgotten by design)."""
    if gate.expired:
        return [f"the gate's reasons were removed from ledger entry {gate.seq} by retention (ledger_payload_days)"]
    decision = gate.decision
    if not decision:
        return []
    lines = []
    for denial in decision.get("denials", []):
        findings = "; ".join(describe_finding(f) for f in denial.get("findings") or [])
        waiver = denial.get("waiver")
        waived = f" [waived by {waiver['granted_by']} until {waiver['until']}]" if waiver else ""
        lines.append(f"{denial['rule']}: {denial['message']}{' ' + findings if findings else ''}{waived}")
    return lines + [f"error: {error}" for error in decision.get("errors", [])]


def candidate_outcome(services: Services, model: str, version: str) -> dict:
    """The version's gate outcome ("no gate decision", "denied", "pending approval"), its reasons, its verified
    requesters, drift alerted since it was trained, and what to do next."""
    asked = requesters(services, model, version)
    outcome = {
        "model": model,
        "version": version,
        "requested_by": list(asked.verified),
        "requester": asked.describe(),
        "unverified_requests": list(asked.unverified),
        "predates_drift": drift_since_trained(services.ledger, services.settings, model, version),
    }
    gate = services.ledger.latest(events.GateDecided, model=model, version=version)
    if gate is None:
        return {**outcome, "outcome": "no gate decision", "reasons": [], "next": f"govern status ({version})"}
    reasons = gate_reasons(gate)
    if not gate.allowed:
        return {
            **outcome,
            "outcome": "denied",
            "reasons": reasons,
            "next": "fix the data, features or config the reasons name and run `govern train` again, or ask for "
            f"a waiver of a waivable rule (`govern waive {model} {version} --rule RULE ...`)",
        }
    return {**outcome, **_pending(services, model, version, reasons, asked.known)}


def _pending(services: Services, model: str, version: str, reasons: list[str], known: bool) -> dict:
    try:
        request = latest_request(services, model, version)
        approvers = who_may_approve(services, request)
    except GovernanceError as exc:
        return {"outcome": "allowed, not pending approval", "reasons": [*reasons, str(exc)], "next": "govern status"}
    who = " or ".join(approvers) or "<a model risk approver>"
    command = f"govern approve {model} {version} --as {approvers[0] if approvers else 'APPROVER'} --evidence {request.pack_digest}"
    two = "" if known else " (two different approvers must each run it: the requester is unknown)"
    return {
        "outcome": "pending approval",
        "reasons": reasons,  # waived denials, if any
        "evidence_pack": request.pack_digest,
        "may_approve": approvers,
        "next": f"{who} reviews the evidence pack, then: {command}{two}",
    }


def outcome_text(outcome: dict) -> str:
    lines = [
        f"{outcome['version']}: {outcome['outcome'].upper()}",
        f"  requested by {outcome['requester']}",
    ]
    lines += [f"  WARNING: {problem}" for problem in outcome["unverified_requests"]]
    lines += [f"  - {reason}" for reason in outcome["reasons"]]
    lines += [f"  {predates_drift_text(drift)}" for drift in outcome["predates_drift"]]
    lines.append(f"  next: {outcome['next']}")
    return "\n".join(lines)
