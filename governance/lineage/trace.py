"""From one served decision to everything behind it.

The decision log gives the version, input digest, reasons (and how many were
withheld as a protected attribute or flagged proxy), whether the kill
switch was on and why a safe-state answer was given; its seal in the ledger
says whether the row is still what was logged (or that it is not yet sealed). The control store says
which governed move had made which version champion at that moment (a
deployment, or a rollback) and which approval it relied on; the ledger says who
turned the kill switch on and why. Then the version's lineage. Never the
decision's inputs: only their digest.
"""

from __future__ import annotations

from typing import Any

from governance.decisions import DecisionLog
from governance.events import KillSwitchFlipped, MoveStep
from governance.lineage.chain import Lineage, LineageError, version_lineage
from governance.lineage.decision_seals import decision_seal, sealed_but_gone
from governance.registry import version_key
from governance.release.production import incidents_about, statement_problem, verified_moves
from governance.release.services import Services


def trace_decision(
    services: Services, decisions: DecisionLog, decision_id: str, registry: bool = False, record: bool = True
) -> dict:
    """The decision, what was in force when it was made, and its version's lineage (cross-checked against the
    MLflow registry only when `registry` is true). A row that disagrees with its seal is ledgered as an incident
    when `record` (`govern trace`); a console page (a GET) only reports it."""
    decision = decisions.get(decision_id)
    if decision is None:
        raise LineageError(
            sealed_but_gone(services, decisions, decision_id, record)
            or f"decision {decision_id!r} is not in the decision log: unknown, or deleted after the "
            "retention period (retention.decision_log_days)"
        )
    seal, seal_problem = decision_seal(services, decision, record)
    version = version_key(decision.model, decision.version) if decision.version is not None else None
    lineage: Lineage | None = version_lineage(services, decision.model, version, registry=registry) if version else None
    # the deployments rows are a cache: never trusted here; the lineage verified the moves already
    moves = list(lineage.moves) if lineage else verified_moves(services, decision.model)
    in_force = move_in_force(moves, decision.ts)
    traced: dict[str, Any] = {
        "decision": {
            "decision_id": decision.decision_id,
            "ts": decision.ts,
            "model": decision.model,
            "version": version,
            "input_digest": decision.input_digest,
            "score": decision.score,
            "outcome": decision.outcome,
            "reasons": decision.reasons,
            "reasons_withheld": decision.reasons_withheld,
            "safe_state_reason": decision.safe_state_reason,
            "inputs_retained": decision.features is not None,
        },
        "seal": seal,
        "kill_switch": {"on": decision.kill_switch, "last_change": _kill_switch_change(services, decision)},
        "in_force": _describe_move(in_force, decision.model),
        "rollback_in_force": bool(in_force and in_force.kind == "rollback"),
        "findings": [seal_problem] if seal_problem else [],
        "lineage": lineage.document if lineage else None,
    }
    if version and in_force and in_force.version != version:
        traced["findings"].append(
            f"served by {version} while the governed champion was {in_force.version} (the "
            f"scoring API had not yet followed move #{in_force.deployment_id})"
        )
    change = traced["kill_switch"]["last_change"]
    if change and change["problem"]:
        traced["findings"].append(
            f"the kill switch change in force (ledger entry {change['seq']}) does not verify: {change['problem']}"
        )
    if lineage:
        traced["approval"] = _approval_relied_on(lineage, in_force)
    else:  # the lineage reports production's disagreements with the record; a safe-state answer has none
        traced["findings"] += [f"production incident: {i}" for i in incidents_about(services, decision.model, None)]
    return traced


def move_in_force(moves: list[MoveStep], ts: str) -> MoveStep | None:
    """The last verified governed move (deployment or rollback) completed at or before `ts`."""
    done = [m for m in moves if m.ts <= ts]
    return done[-1] if done else None


def _describe_move(move: MoveStep | None, model: str) -> dict | None:
    if move is None:
        return None
    return {
        "id": move.deployment_id,
        "kind": move.kind,
        "version": move.version,
        "from": version_key(model, move.previous_version) if move.previous_version else None,
        "actor": move.actor,
        "automated": move.actor.startswith("system:"),
        "completed_at": move.ts,
        "approval_statement": move.approval,
        "ledger_entry": move.seq,
    }


def _kill_switch_change(services: Services, decision) -> dict | None:
    """The last kill switch flip at or before the decision (who, when, why)."""
    flips = [
        e for e in services.ledger.events(KillSwitchFlipped, model=decision.model, checked=False) if e.ts <= decision.ts
    ]
    if not flips:
        return None
    last = flips[-1]
    problem = statement_problem(
        services,
        services.roster,
        last.statement,
        "disable" if last.disabled else "enable",
        signer=last.actor,
        model=decision.model,
    )
    return {
        "state": "on" if last.disabled else "off",
        "by": last.actor,
        "at": last.ts,
        "reason": last.reason,
        "seq": last.seq,
        "entry_hash": last.entry_hash,
        "problem": problem,
    }


def _approval_relied_on(lineage: Lineage, move: MoveStep | None) -> dict | None:
    """The approval the move in force deployed under; else the version's latest granted approval."""
    granted = [a for a in lineage.document["approvals"] if a["decision"] == "granted"]
    relied = [a for a in granted if move and a["statement_digest"] == move.approval]
    chosen = (relied or granted or [None])[-1]
    return chosen and {key: chosen[key] for key in ("approver", "roles", "signed_at", "statement_digest")}
