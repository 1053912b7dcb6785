"""Moving the champion: deployment of an approved version, rollback, and crash recovery.

A move is a small protocol over two stores that cannot share a transaction
(the control store and MLflow's registry):

1. record the move as `started` in the control store, and in the ledger;
2. move the MLflow `champion` alias (one atomic registry write);
3. mark the move `completed`, and ledger it.

A crash anywhere leaves the alias on the old or the new version, never between,
and `reconcile` (run before every move and by `govern status`) settles each `started` move by reading where the alias points, then
makes sure the ledger records every step. Serving only follows a champion whose
move completed, so until then it answers in the safe state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import timedelta
from typing import NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance import events
from governance.control import Deployment
from governance.errors import GovernanceError
from governance.policy.authz import ModelSubject, VersionSubject, authorize, roles_of
from governance.registry import parse_version_key, version_key
from governance.release.approvals import Approval, approval_lapsed
from governance.release.evidence_pack import EvidencePack
from governance.release.production import (
    approved_artifact,
    move_problem,
    record_incidents,
    replaced,
    verified_champion,
    verified_moves,
)
from governance.release.services import Services
from governance.timestamps import utc_timestamp
from governance.trust.statements import Statement, sign
from governance.trust.store import StatementRefused

ROLLBACK_STATEMENT_VALIDITY = timedelta(minutes=10)


class DeploymentRefused(GovernanceError):
    """A deployment or rollback was refused; nothing moved. Ledgered with its reason."""


def deploy(services: Services, approval: Approval, pack: EvidencePack, actor: str) -> Deployment:
    """Make an approved version the champion, after Cedar allows `actor` to deploy it on that approval and its
    artifact is checked to be the one approved.

    An approval is spent by the deployment it authorised: once that version is replaced (a newer release, a
    rollback), the same approval cannot bring it back; a person must approve again."""
    model, number = parse_version_key(approval.version)
    reconcile(services, model)
    principal = actor.split(":", 1)[0]  # "system:production_deployment" acts as the roster's system principal
    subject = VersionSubject(model, approval.version, services.governed_model(model).risk_tier)
    decision = authorize(
        services.policies,
        roles_of(services.roster),
        principal,
        "deploy",
        subject,
        {"human_approval": approval.principal in services.roster.principals and "automation" not in approval.roles},
    )
    if not decision.allowed:
        _refuse(services, model, approval.version, actor, " ".join(decision.reasons))
    approved_artifact = pack.facts["artifact_sha256"]
    registered = services.registry.version(model, number)
    actual = services.registry.artifact_digest(registered)
    if actual != approved_artifact:
        _refuse(
            services,
            model,
            approval.version,
            actor,
            f"the model artifact's digest is {actual}, but the approved evidence names {approved_artifact}",
        )
    spent = [
        m
        for m in verified_moves(services, model)
        if m.kind == "deploy" and m.approval == approval.statement_digest and m.version == approval.version
    ]
    if spent and _champion_number(services, model) == number:
        return services.control.deployment(spent[-1].deployment_id)  # already deployed by this approval
    if spent:
        _refuse(
            services,
            model,
            approval.version,
            actor,
            f"approval {approval.statement_digest[:12]} was used by deployment #{spent[-1].deployment_id} and the "
            "version was since replaced (e.g. rolled back); deploying it again needs a new approval request and "
            "approval",
        )
    return _move(
        services,
        model,
        number,
        kind="deploy",
        actor=actor,
        artifact_sha256=approved_artifact,
        evidence_digest=approval.evidence_digest,
        approval_digest=approval.statement_digest,
    )


def rollback(
    services: Services,
    model: str,
    principal: str,
    private_key: Ed25519PrivateKey,
    reason: str,
    to_version: int | None = None,
) -> Deployment:
    """Return to an earlier approved version (default: the one deployed before the champion), signed and authorised."""
    services.governed_model(model)
    reconcile(services, model)
    moves = verified_moves(services, model)
    current = parse_version_key(moves[-1].version)[1] if moves else None
    target = to_version if to_version is not None else previous_version(services, model)
    if target is None:
        _refuse(
            services,
            model,
            None,
            principal,
            f"no earlier approved version of {model} to roll back to "
            "(versions rolled back from are passed over; name one with `govern rollback --to`)",
        )
    key = version_key(model, target)
    signed = sign(
        Statement.new(
            "rollback",
            {"model": model, "version": key},
            principal,
            valid_for=ROLLBACK_STATEMENT_VALIDITY,
            comment=reason,
        ),
        private_key,
    )
    try:
        services.statements.submit(signed, services.roster)
    except StatementRefused as refusal:
        raise DeploymentRefused(f"rollback refused: {refusal.reason}") from None
    approved = approved_artifact(moves, target)
    decision = authorize(
        services.policies,
        roles_of(services.roster),
        principal,
        "rollback",
        ModelSubject(model),
        {"target_version": key, "target_approved": approved is not None},
    )
    if not decision.allowed:
        _refuse(services, model, key, principal, " ".join(decision.reasons), statement=signed.digest)
    if target == current:
        _refuse(services, model, key, principal, f"{key} is already the champion", statement=signed.digest)
    actual = services.registry.artifact_digest(services.registry.version(model, target))
    if actual != approved:
        _refuse(
            services,
            model,
            key,
            principal,
            f"{key}'s artifact digest {actual} is not the approved {approved}",
            statement=signed.digest,
        )
    original = [m for m in moves if m.version == key][-1]
    lapsed = approval_lapsed(services, model, key, original.evidence_pack)
    if lapsed:
        _refuse(
            services,
            model,
            key,
            principal,
            f"{key}: {lapsed}; a rollback does not bring it back",
            statement=signed.digest,
        )
    return _move(
        services,
        model,
        target,
        kind="rollback",
        actor=principal,
        artifact_sha256=approved,
        evidence_digest=original.evidence_pack,
        approval_digest=original.approval,
        statement=signed.digest,
        reason=reason,
    )


def previous_version(services: Services, model: str) -> int | None:
    """The target of a person's plain `rollback`: the version that was champion before the current one, walking
    back over completed moves whose signed authority verifies and passing over versions a rollback moved away
    from (they come back only when someone names one, `rollback --to`, or deploys it on a new approval).
    Monitoring chooses its own target (governance.monitoring.remediation)."""
    moves = verified_moves(services, model)
    versions = [parse_version_key(m.version)[1] for m in moves]
    skipped = ({versions[-1]} if versions else set()) | _rolled_back_from(moves)
    return next((v for v in reversed(versions) if v not in skipped), None)


def _rolled_back_from(moves: list[events.MoveStep]) -> set[int]:
    """Versions a verified rollback moved away from and that no later move brought back."""
    away: set[int] = set()
    for move, before in replaced(moves):
        away.discard(parse_version_key(move.version)[1])
        if move.kind == "rollback" and before is not None:
            away.add(before)
    return away


def reconcile(services: Services, model: str) -> list[Deployment]:
    """Settle moves a crash interrupted; returns the settled moves.

    A deployments row is a cache. A `started` move completes only if the ledger records its start and the
    start's authority verifies (a signed approval, and for a rollback its signed statement) and the alias
    points at it; every other started row is aborted. A move whose completion the ledger missed is ledgered
    on the same condition. Rows the signed record does not back are incidents, ledgered and left unused."""
    settled, incidents, roster = [], [], services.roster
    champion = services.registry.champion(model)
    steps = services.ledger.events(events.MoveStep, model=model, checked=False)
    for move in services.control.deployments(model):
        recorded = {step.step: step for step in steps if step.deployment_id == move.id}
        if move.status != "started" and move.status in recorded:
            continue
        started = recorded.get("started")
        problem = (
            "the ledger records no start of it"
            if started is None
            else move_problem(services, roster, _completing(services, started))
        )
        if problem:
            incidents.append(
                f"deployments row #{move.id} ({move.kind} to v{move.version}, {move.status}) is not "
                f"backed by the signed record: {problem}"
            )
        lapsed = _lapsed(services, started) if move.status == "started" and started and problem is None else None
        if lapsed:
            incidents.append(
                f"deployments row #{move.id} ({move.kind} to v{move.version}) is not completed: {lapsed}; "
                "recovery does not complete a move a new one would be refused"
            )
        if move.status == "started":
            done = problem is None and lapsed is None and champion == move.version
            move = services.control.finish_deployment(move.id, "completed" if done else "aborted")
            settled.append(move)
        if move.status == "aborted" and started is None:  # the record says it was tried and came to nothing
            move = replace(move, actor="system:reconcile")  # the row's actor is a cache too: nobody signed it
            _ledger_step(services, move, "started", recovered=True)
        if move.status == "aborted" or problem is None:
            _ledger_step(services, move, move.status, recovered=True, **(_carried(started) if started else {}))
    record_incidents(services, model, incidents, actor="system:reconcile")
    return settled


def _lapsed(services: Services, started: events.MoveStep) -> str | None:
    """Why the approval the ledgered start of a move rests on no longer stands (the model's risk tier was raised
    since its gate ran, say): the release and `rollback` refuse such a move, so recovery does not finish one."""
    lapsed = approval_lapsed(services, started.model, started.version, started.evidence_pack)
    return f"{started.version}: {lapsed}" if lapsed else None


def _completing(services: Services, started: events.MoveStep) -> events.MoveStep:
    """The completion recovery would ledger now, to judge the move as production will judge it once completed
    (its approval's age, and any rejection, as of now)."""
    declared = {f.name for f in dataclasses.fields(events.MoveStep)} - {"seq", "ts", "entry_hash", "expired"}
    completion = events.move_step(started.kind, "completed")
    return completion(
        **{name: getattr(started, name) for name in declared}, seq=services.ledger.size() + 1, ts=utc_timestamp()
    )


def _carried(started: events.MoveStep) -> dict:
    """What a recovered step repeats from the start it completes (a rollback's statement and reason)."""
    return {"statement": started.statement, "reason": started.reason, "trigger": started.trigger}


def _move(
    services: Services,
    model: str,
    number: int,
    *,
    kind: str,
    actor: str,
    artifact_sha256: str,
    evidence_digest: str,
    approval_digest: str,
    **extra,
) -> Deployment:
    move = services.control.start_deployment(
        model=model,
        version=number,
        kind=kind,
        artifact_sha256=artifact_sha256,
        evidence_digest=evidence_digest,
        approval_digest=approval_digest,
        previous_version=_champion_number(services, model),
        actor=actor,
    )
    _ledger_step(services, move, "started", **extra)
    services.registry.set_champion(model, number)
    move = services.control.finish_deployment(move.id, "completed")
    _ledger_step(services, move, "completed", **extra)
    return move


def _ledger_step(services: Services, move: Deployment, step: str, **extra) -> None:
    services.ledger.append(
        events.move_step(move.kind, step)(
            actor=move.actor,
            model=move.model,
            version=version_key(move.model, move.version),
            artifact=move.artifact_sha256,
            evidence_pack=move.evidence_digest,
            approval=move.approval_digest,
            deployment_id=move.id,
            previous_version=move.previous_version,
            **extra,
        )
    )


def _refuse(
    services: Services, model: str, version: str | None, actor: str, reason: str, statement: str | None = None
) -> NoReturn:
    services.ledger.append(
        events.DeploymentRefused(actor=actor, model=model, version=version, statement=statement, reason=reason)
    )
    raise DeploymentRefused(f"{model}{' ' + version if version else ''}: {reason}")


def _champion_number(services: Services, model: str) -> int | None:
    move = verified_champion(services, model)
    return parse_version_key(move.version)[1] if move else None
