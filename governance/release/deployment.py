"""Moving the champion: deployment of an approved version, rollback, and crash recovery.

A move is a small protocol over two stores that cannot share a transaction
(the control store and MLflow's registry):

1. record the move as `started` in the control store, and in the ledger;
2. move the MLflow `champion` alias (one atomic registry write);
3. mark the move `completed`, and ledger it.

A crash anywhere leaves the alias on the old or the new version, never between,
and `reconcile` (run before every move, by `govern status` and by serving's
startup) settles each `started` move by reading where the alias points, then
makes sure the ledger records every step. Serving only follows a champion whose
move completed, so until then it answers in the safe state.
"""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.control import Deployment
from governance.errors import GovernanceError
from governance.policy.authz import ModelSubject, VersionSubject, authorize, roles_of
from governance.registry import parse_version_key, version_key
from governance.release.approvals import Approval, approval_lapsed
from governance.release.evidence_pack import EvidencePack
from governance.release.services import Services
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
    decision = authorize(services.policies, roles_of(services.roster), principal, "deploy", subject,
                         {"human_approval": approval.principal in services.roster.principals
                          and "automation" not in approval.roles})
    if not decision.allowed:
        _refuse(services, model, approval.version, actor, " ".join(decision.reasons))
    approved_artifact = pack.facts["artifact_sha256"]
    registered = services.registry.version(model, number)
    actual = services.registry.artifact_digest(registered)
    if actual != approved_artifact:
        _refuse(services, model, approval.version, actor,
                f"the model artifact's digest is {actual}, but the approved evidence names {approved_artifact}")
    spent = [d for d in services.control.deployments(model, "completed")
             if d.approval_digest == approval.statement_digest and d.version == number]
    if spent and services.registry.champion(model) == number:
        return spent[-1]  # already deployed by this approval: nothing to do
    if spent:
        _refuse(services, model, approval.version, actor,
                f"approval {approval.statement_digest[:12]} was used by deployment #{spent[-1].id} and the version was "
                "since replaced (e.g. rolled back); deploying it again needs a new approval request and approval")
    return _move(services, model, number, kind="deploy", actor=actor, artifact_sha256=approved_artifact,
                 evidence_digest=approval.evidence_digest, approval_digest=approval.statement_digest)


def rollback(services: Services, model: str, principal: str, private_key: Ed25519PrivateKey, reason: str,
             to_version: int | None = None) -> Deployment:
    """Return to an earlier approved version (default: the one deployed before the champion), signed and authorised."""
    services.governed_model(model)
    reconcile(services, model)
    current = services.registry.champion(model)
    target = to_version if to_version is not None else previous_version(services, model)
    if target is None:
        _refuse(services, model, None, principal, f"no earlier approved version of {model} to roll back to "
                "(versions rolled back from are passed over; name one with `govern rollback --to`)")
    key = version_key(model, target)
    signed = sign(Statement.new("rollback", {"model": model, "version": key}, principal,
                                valid_for=ROLLBACK_STATEMENT_VALIDITY, comment=reason), private_key)
    try:
        services.statements.submit(signed, services.roster)
    except StatementRefused as refusal:
        raise DeploymentRefused(f"rollback refused: {refusal.reason}") from None
    approved_artifact = services.control.deployed_artifact(model, target)
    decision = authorize(services.policies, roles_of(services.roster), principal, "rollback", ModelSubject(model),
                         {"target_version": key, "target_approved": approved_artifact is not None})
    if not decision.allowed:
        _refuse(services, model, key, principal, " ".join(decision.reasons), statement=signed.digest)
    if target == current:
        _refuse(services, model, key, principal, f"{key} is already the champion", statement=signed.digest)
    actual = services.registry.artifact_digest(services.registry.version(model, target))
    if actual != approved_artifact:
        _refuse(services, model, key, principal, f"{key}'s artifact digest {actual} is not the approved "
                f"{approved_artifact}", statement=signed.digest)
    original = [d for d in services.control.deployments(model, "completed") if d.version == target][-1]
    lapsed = approval_lapsed(services, model, key, original.evidence_digest)
    if lapsed:
        _refuse(services, model, key, principal, f"{key}: {lapsed}; a rollback does not bring it back",
                statement=signed.digest)
    return _move(services, model, target, kind="rollback", actor=principal, artifact_sha256=approved_artifact,
                 evidence_digest=original.evidence_digest, approval_digest=original.approval_digest,
                 statement_digest=signed.digest, reason=reason)


def previous_version(services: Services, model: str) -> int | None:
    """The target of a person's plain `rollback`: the version that was champion before the current one, walking
    back over completed moves and passing over versions a rollback moved away from (they come back only when
    someone names one, `rollback --to`, or deploys it on a new approval). Monitoring chooses its own target
    (governance.monitoring.remediation)."""
    moves = services.control.deployments(model, "completed")
    skipped = {services.registry.champion(model)} | _rolled_back_from(moves)
    return next((m.version for m in reversed(moves) if m.version not in skipped), None)


def _rolled_back_from(moves: list[Deployment]) -> set[int]:
    """Versions a rollback moved away from and that no later move brought back."""
    away: set[int] = set()
    for move in moves:
        away.discard(move.version)
        if move.kind == "rollback" and move.previous_version is not None:
            away.add(move.previous_version)
    return away


def reconcile(services: Services, model: str) -> list[Deployment]:
    """Settle moves a crash interrupted, and make the ledger record every step; returns the settled moves."""
    settled = []
    champion = services.registry.champion(model)
    for move in services.control.deployments(model):
        recorded = _recorded_steps(services, model, move.id)
        if "started" not in recorded:
            _ledger_step(services, move, "started", recovered=True)
        if move.status == "started":
            move = services.control.finish_deployment(move.id, "completed" if champion == move.version else "aborted")
            settled.append(move)
        if move.status not in recorded:
            _ledger_step(services, move, move.status, recovered=True)
    return settled


def _move(services: Services, model: str, number: int, *, kind: str, actor: str, artifact_sha256: str,
          evidence_digest: str, approval_digest: str, **extra) -> Deployment:
    move = services.control.start_deployment(
        model=model, version=number, kind=kind, artifact_sha256=artifact_sha256, evidence_digest=evidence_digest,
        approval_digest=approval_digest, previous_version=services.registry.champion(model), actor=actor)
    _ledger_step(services, move, "started", **extra)
    services.registry.set_champion(model, number)
    move = services.control.finish_deployment(move.id, "completed")
    _ledger_step(services, move, "completed", **extra)
    return move


def _ledger_step(services: Services, move: Deployment, step: str, **extra) -> None:
    services.ledger.append(
        actor=move.actor, action=f"{move.kind}.{step}",
        subject={"model": move.model, "version": version_key(move.model, move.version)},
        digests={"artifact": move.artifact_sha256, "evidence_pack": move.evidence_digest,
                 "approval": move.approval_digest},
        payload={"deployment_id": move.id, "previous_version": move.previous_version, **extra})


def _recorded_steps(services: Services, model: str, move_id: int) -> set[str]:
    steps = set()
    # Bookkeeping, read unchecked: one altered entry of the model must not stop a rollback (verify names it).
    for entry in services.ledger.entries(model=model, checked=False):
        if entry.action.split(".")[0] in ("deploy", "rollback") and (entry.payload or {}).get("deployment_id") == move_id:
            steps.add(entry.action.split(".", 1)[1])
    return steps


def _refuse(services: Services, model: str, version: str | None, actor: str, reason: str,
            statement: str | None = None) -> None:
    services.ledger.append(actor=actor, action="deployment.refused",
                           subject={"model": model, **({"version": version} if version else {})},
                           digests={"statement": statement} if statement else None, payload={"reason": reason})
    raise DeploymentRefused(f"{model}{' ' + version if version else ''}: {reason}")
