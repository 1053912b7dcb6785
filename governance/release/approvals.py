"""Human approval of a sealed evidence pack.

A request (`events.ApprovalRequested`) names one version and the digest of
its sealed evidence pack. An approver signs an `approve` or `reject` statement
bound to that digest; the statement store checks it is authentic, Cedar
decides whether that principal may decide on that version (role, separation of
duties, expiry) as the gate decision sealed in that pack describes it, and the
decision lands in the ledger. Only decisions Cedar allowed count: a rejection
it refused vetoes nothing.

`valid_approval` is what the release assets rely on. It trusts nothing it did
not check itself at that moment: the pack's files are re-hashed, the statement
re-verified against today's roster, Cedar asked again with the approval's age,
and a rejection closes the pack for good (a new gate run seals a new one).
Every refusal is ledgered with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance import events
from governance.abandoned import abandoned
from governance.errors import GovernanceError
from governance.objectstore import sealed_pack_dir
from governance.policy.authz import VersionSubject, approval_context, authorize, roles_of
from governance.policy.evidence import RISK_TIERS
from governance.registry import parse_version_key
from governance.release import evidence_pack
from governance.release.evidence_pack import GATE_FILE, EvidenceError, EvidencePack
from governance.release.requests import requesters
from governance.release.services import Services
from governance.timestamps import parse_utc, utc_now, utc_timestamp
from governance.trust.statements import SignedStatement, Statement, sign
from governance.trust.store import StatementRefused

# How long the signature itself lasts; the policy's approval_expiry rule decides how long an approval counts.
STATEMENT_VALIDITY = timedelta(days=30)
# How much of a pack digest an approver must give to pin it (128 bits: no second pack can be made to match).
REVIEWED_DIGEST_CHARS = 32
# The Cedar rule that asks for a second approver of a version nobody verifiably requested.
SECOND_APPROVER = "separation_of_duties.unknown_requester_second_approver"


class ApprovalRefused(GovernanceError):
    """An approval or rejection was not accepted, or no valid approval exists. Ledgered with its reason."""


@dataclass(frozen=True)
class ApprovalRequest:
    model: str
    version: str
    pack_digest: str
    pack_path: str
    requested_at: str
    entry_hash: str
    seq: int
    requested_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Approval:
    """A verified, authorised approval of one evidence pack."""

    model: str
    version: str
    principal: str
    roles: tuple[str, ...]
    issued_at: str
    comment: str
    statement_digest: str
    evidence_digest: str
    policy_digest: str
    awaiting_second_approver: bool = False  # recorded, but counts only once another approver approves too

    def to_dict(self) -> dict:
        return {**self.__dict__, "roles": list(self.roles)}


def request_approval(services: Services, pack: EvidencePack, requested_by: tuple[str, ...]) -> ApprovalRequest:
    """Mark the version pending approval of exactly this pack."""
    model, version = pack.manifest["model"], pack.manifest["version"]
    rejected = _rejections(services, model, version, pack.digest)
    if rejected:
        raise ApprovalRefused(
            f"{pack.path}: {rejected[0].actor} rejected this evidence pack at {rejected[0].ts}; a rejected pack is "
            "never released: run the release gate again for a new one"
        )
    expected = services.settings.evidence_pack_dir(model, version, pack.digest)
    if pack.path.resolve() != expected.resolve():
        raise ApprovalRefused(
            f"{pack.path}: an evidence pack is requested for approval only where it is sealed ({expected})"
        )
    requested = events.ApprovalRequested(
        actor="system:approval_request",
        model=model,
        version=version,
        evidence_pack=pack.digest,
        artifact=pack.facts["artifact_sha256"],
        policy=pack.facts["policy_digest"],
        requested_by=tuple(requested_by),
    )
    entry = services.ledger.append(requested)
    return _request(services, replace(requested, seq=entry.seq, ts=entry.ts, entry_hash=entry.entry_hash))


def latest_request(services: Services, model: str, version: str) -> ApprovalRequest:
    requested = services.ledger.latest(events.ApprovalRequested, model=model, version=version)
    if requested is None:
        raise ApprovalRefused(f"{model} {version}: no approval request in the ledger (its gate must pass first)")
    return _request(services, requested)


def approval_stage(services: Services, request: ApprovalRequest, deployed: set[str]) -> tuple[str, str | None] | None:
    """Where an approval request stands: ("pending", None) while nobody has decided; ("awaiting_release",
    approver) once approved, until a completed deployment has used that approval (its statement digest in
    `deployed`, see `deployed_approvals`); else None (rejected, released)."""
    decisions = _decided(services, request)
    if not decisions:
        return "pending", None
    last = decisions[-1]
    if isinstance(last, events.ApprovalGranted) and last.statement not in deployed:
        return "awaiting_release", last.actor
    return None


def release_abandoned(services: Services, request: ApprovalRequest) -> events.ReleaseAbandoned | None:
    """Automation's giving up on releasing the request's latest decision, a grant, if that is ledgered (a grant
    signed after it is released anew)."""
    decisions = _decided(services, request)
    if not decisions or not isinstance(decisions[-1], events.ApprovalGranted):
        return None
    given_up = abandoned(services, request.model, decisions[-1].seq)
    return given_up if isinstance(given_up, events.ReleaseAbandoned) else None


def deployed_approvals(services: Services, model: str) -> set[str]:
    """Statement digests of the approvals a verified deployment of `model` used."""
    from governance.release.production import verified_moves  # production reads approvals' records

    return {m.approval for m in verified_moves(services, model) if m.kind == "deploy"}


def _decided(services: Services, request: ApprovalRequest) -> list[events.ApprovalDecided]:
    """Grants and rejections of this request's pack, oldest first: each ledgered only once Cedar allowed it."""
    return [
        e
        for e in services.ledger.events(
            events.ApprovalDecided, model=request.model, version=request.version, since_seq=request.seq
        )
        if e.evidence_pack == request.pack_digest
    ]


def who_may_approve(services: Services, request: ApprovalRequest) -> list[str]:
    """The roster principals Cedar would let approve this request's pack now (where two approvals are needed,
    each of the two must be one of them); a GovernanceError saying why if nobody can (the pack no longer
    verifies, its waiver has ended, the model's risk tier was raised)."""
    roster, bundle, now = services.roster, services.policies, utc_now()
    subject = _sealed_subject(services, request, _verified_pack(services, request), now)
    signed = {  # who signed an approval of this pack still in force: a second approval must be someone else's
        r.signed.statement.principal
        for r in services.statements.find(action="approve", model=request.model, version=request.version, active_at=now)
        if dict(r.signed.statement.subject).get("evidence_digest") == request.pack_digest
    }
    return sorted(
        name
        for name in roster.principals
        if name not in signed
        and authorize(bundle, roles_of(roster), name, "approve", subject, approval_context(now, now, 2)).allowed
    )


def decide(
    services: Services,
    model: str,
    version: str,
    action: str,
    principal: str,
    private_key: Ed25519PrivateKey,
    comment: str = "",
    now: datetime | None = None,
    reviewed: str | None = None,
) -> Approval:
    """Sign, verify, authorise and record an `approve` or `reject` of the version's pending pack; `reviewed`
    (the digest, or its first REVIEWED_DIGEST_CHARS or more characters, of the pack the principal reviewed) must
    name that pack."""
    now = now or utc_now()
    request = latest_request(services, model, version)
    if reviewed is not None and len(reviewed) < REVIEWED_DIGEST_CHARS:
        raise ApprovalRefused(
            f"{version}: give at least {REVIEWED_DIGEST_CHARS} characters of the evidence pack "
            f"digest you reviewed, not {len(reviewed)}"
        )
    if reviewed is not None and not request.pack_digest.startswith(reviewed.lower()):
        raise ApprovalRefused(
            f"{version}: the pending evidence pack is {request.pack_digest}, not the {reviewed!r} "
            "you reviewed: review the pending pack"
        )
    if action == "approve" and services.registry.champion(model) == parse_version_key(version)[1]:
        raise ApprovalRefused(f"{version} is already the champion: there is nothing to approve")
    if action == "approve":
        _refuse_if_standing(services, request, principal, now)
    subject = {"model": model, "version": version, "evidence_digest": request.pack_digest}
    signed = sign(
        Statement.new(action, subject, principal, valid_for=STATEMENT_VALIDITY, comment=comment, now=now), private_key
    )
    try:
        services.statements.submit(signed, services.roster, now)
    except StatementRefused as refusal:
        raise ApprovalRefused(f"{action} refused: {refusal.reason}") from None
    try:
        sealed = _sealed_subject(services, request, _verified_pack(services, request), now)
    except GovernanceError as refusal:  # the pack changed, its waiver ended, the model's tier was raised
        _ledger_refusal(services, request, signed, str(refusal))
        raise
    approvers = 1
    if action == "approve":
        _refuse_if_rejected(services, request, signed)
        approvers += len(set(_standing(services, request, sealed, now)) - {principal})
    approval = _authorised(services, request, sealed, signed, now, approvers=approvers)
    if approval.awaiting_second_approver:
        return approval  # the signed statement is recorded; the second approver's grant releases it
    decided = events.ApprovalGranted if action == "approve" else events.ApprovalRejected
    services.ledger.append(
        decided(
            actor=principal,
            model=model,
            version=version,
            statement=signed.digest,
            evidence_pack=request.pack_digest,
            policy=approval.policy_digest,
            roles=tuple(approval.roles),
            comment=comment,
        )
    )
    return approval


def valid_approval(
    services: Services, model: str, version: str, relying: str, now: datetime | None = None
) -> tuple[Approval, EvidencePack]:
    """The approval `relying` (an asset or command) may act on now, with its verified pack; else refuse."""
    now = now or utc_now()
    reasons: list[str] = []
    try:
        request = latest_request(services, model, version)
        pack = _verified_pack(services, request)
        sealed = _sealed_subject(services, request, pack, now)
        standing = _standing(services, request, sealed, now, reasons)
        if standing:
            newest = next(iter(standing.values()))
            approval = _authorised(services, request, sealed, newest, now, ledger=False, approvers=len(standing))
            if not approval.awaiting_second_approver:
                return approval, pack
            reasons.append(
                f"only {newest.statement.principal} approved: {services.policies.rules[SECOND_APPROVER].message}"
            )
        reasons = reasons or ["no unexpired approve statement for this version"]
    except GovernanceError as error:
        reasons.append(str(error))
    services.ledger.append(
        events.ReleaseRefused(actor=f"system:{relying}", model=model, version=version, reasons=tuple(reasons))
    )
    raise ApprovalRefused(f"{model} {version}: no valid approval: " + "; ".join(reasons))


def spent_until(services: Services, model: str, version: str, evidence: str, before_seq: int | None = None) -> str:
    """When the latest deployment of this evidence pack completed (before ledger entry `before_seq`; "" if none):
    the approvals of it signed before then were spent on it, so deploying the version again needs new ones (a
    rollback returns to a version on the approvals it was deployed with)."""
    done = [
        m.ts
        for m in services.ledger.events(events.DeploymentCompleted, model=model, version=version, checked="facts")
        if m.evidence_pack == evidence and (before_seq is None or m.seq < before_seq)
    ]
    return done[-1] if done else ""


def _refuse_if_standing(services: Services, request: ApprovalRequest, principal: str, now: datetime) -> None:
    """Refuse a second approval of the pending pack by one principal while their first stands and waits for a
    second approver: it would count for nothing and only repeat the record. (Once the pack was granted, anyone
    may approve it again, as `govern status` advises when its release was given up.)"""
    try:
        sealed = _sealed_subject(services, request, _verified_pack(services, request), now)
    except GovernanceError:
        return  # the approval itself is refused, and ledgered, below
    earlier = _standing(services, request, sealed, now).get(principal)
    granted = any(  # the pack was approved since its request: its release, not a second approver, is awaited
        g.evidence_pack == request.pack_digest and g.seq > request.seq
        for g in services.ledger.events(events.ApprovalGranted, model=request.model, version=request.version)
    )
    if earlier is not None and not granted:
        raise ApprovalRefused(
            f"{principal} already approved evidence pack {request.pack_digest[:12]} of {request.version} (statement "
            f"{earlier.digest[:12]}, valid until {utc_timestamp(earlier.statement.expires_at)}); it waits for a "
            "second approver, who must be someone else: nothing was recorded"
        )


def _standing(
    services: Services,
    request: ApprovalRequest,
    sealed: VersionSubject,
    now: datetime,
    reasons: list[str] | None = None,
) -> dict[str, SignedStatement]:
    """Per principal, newest first, the approve statement of this request's pack that stands now: bound to the
    pack, signed after the request, not overruled by a rejection, still verifying, and allowed by Cedar once a
    second approver is counted. Why each other one does not stand goes to `reasons`."""
    standing: dict[str, SignedStatement] = {}
    model, version = request.model, request.version
    spent = spent_until(services, model, version, request.pack_digest)
    for recorded in services.statements.find(action="approve", model=model, version=version, active_at=now):
        signed = recorded.signed
        if signed.statement.principal in standing:
            continue
        if utc_timestamp(signed.statement.issued_at) <= spent:
            if reasons is not None:
                reasons.append(
                    f"{signed.statement.principal}'s approval {signed.digest[:12]} was spent on the deployment of "
                    f"this pack completed at {spent}"
                )
            continue
        try:
            _check_binding(request, signed)
            _refuse_if_rejected(services, request, signed, ledger=False)
            services.statements.reverify(signed, services.roster, now)
            _authorised(services, request, sealed, signed, now, ledger=False, approvers=2)
            standing[signed.statement.principal] = signed
        except (ApprovalRefused, StatementRefused) as refusal:
            if reasons is not None:
                reasons.append(
                    f"{signed.statement.principal}'s approval {signed.digest[:12]}: "
                    f"{getattr(refusal, 'reason', None) or refusal}"
                )
    return standing


def _verified_pack(services: Services, request: ApprovalRequest) -> EvidencePack:
    return evidence_pack.verify(Path(request.pack_path), request.pack_digest)


def approval_lapsed(
    services: Services, model: str, version: str, evidence_digest: str, now: datetime | None = None
) -> str | None:
    """Why an approval of this sealed evidence no longer stands (a rollback must not bring such a version back):
    someone rejected that pack, or its gate passed on a waiver that has ended, or judged it under a lower risk
    tier than the model now has, or its pack cannot be read. None when it stands, or when no request sealed it."""
    rejected = _rejections(services, model, version, evidence_digest)
    if rejected:
        return f"{rejected[0].actor} rejected its evidence pack at {rejected[0].ts}"
    for requested in services.ledger.events(events.ApprovalRequested, model=model, version=version):
        if requested.evidence_pack == evidence_digest:
            try:
                decision = sealed_gate_decision(
                    evidence_pack.verify(Path(_request(services, requested).pack_path), evidence_digest)
                )
            except GovernanceError as exc:  # the pack no longer verifies, or seals no gate decision
                return f"the approved evidence pack cannot be read as sealed: {exc}"
            return (
                gate_problem(services, model, version, decision)
                or _waiver_end(decision, now or utc_now())
                or _tier_raised(services, model, version, decision)
            )
    return None


def sealed_gate_decision(pack: EvidencePack) -> dict:
    """The gate decision sealed in the pack, checked against the pack's manifest."""
    try:
        return pack.document(GATE_FILE, "the pack seals no gate decision, so nothing says who may approve it")
    except EvidenceError as exc:
        raise ApprovalRefused(str(exc)) from None


def _tier_raised(services: Services, model: str, version: str, decision: dict) -> str | None:
    """Why a sealed gate decision no longer judges the version: it did so under a lower risk tier than the
    model's configuration now gives (both its thresholds and who may approve were the lower tier's)."""
    sealed, tier = decision.get("risk_tier"), services.governed_model(model).risk_tier
    if sealed not in RISK_TIERS:
        return f"the gate decision sealed for {version} names no known risk tier ({sealed!r})"
    if RISK_TIERS.index(tier) < RISK_TIERS.index(sealed):
        return f"{model}'s risk tier is now {tier}, but the gate sealed for {version} judged it as {sealed}"
    return None


def gate_problem(services: Services, model: str, version: str, decision: dict) -> str | None:
    """Why the gate decision sealed in a pack lets nobody approve the version: it did not allow it, it allows it
    with a rule denied and not waived, or the ledger holds a denial of the same evidence under the same policy that
    it does not overcome with a waiver of each rule denied. Gate entries are unsigned: a writer of the ledger and
    the state dir can append an allowance and seal it in a pack of its own, but not undo the denial before it."""
    if decision.get("allowed") is not True:
        return f"the gate decision sealed for {version} did not allow it"
    denials = decision.get("denials") or []
    unwaived = sorted(str(d.get("rule")) for d in denials if not d.get("waiver"))
    if unwaived:
        return f"the gate decision sealed for {version} allows it with {', '.join(unwaived)} denied and not waived"
    waived = {d.get("rule") for d in denials}
    sealed_on = (decision.get("evidence_digest"), decision.get("policy_digest"))
    for gate in services.ledger.events(events.GateDecided, model=model, version=version, checked=False):
        if gate.allowed or (gate.evidence, gate.policy) != sealed_on:
            continue
        denied = {d.get("rule") for d in (gate.decision or {}).get("denials", [])}  # unknown once expired
        if not waived or not denied <= waived:
            rules = ", ".join(sorted(map(str, denied - waived))) or "the rules it denied"
            return (
                f"the release gate denied {version} on this very evidence under this very policy (ledger entry "
                f"{gate.seq}), and the allowance sealed in its pack waives none of {rules}: a forged allowance"
            )
    return None


def _waiver_end(decision: dict, now: datetime) -> str | None:
    if decision["valid_until"] and parse_utc(decision["valid_until"]) <= now:
        return f"the gate passed on a waiver that ended at {decision['valid_until']}"
    return None


def _sealed_subject(services: Services, request: ApprovalRequest, pack: EvidencePack, now: datetime) -> VersionSubject:
    """The version as the gate decision sealed in the pending pack describes it, with everyone whose signed
    request for it verifies now (`governance.release.requests`; no run tag counts). A gate that passed on a
    waiver counts only until the waiver ends, and a gate that judged the version under a lower risk tier than
    the model now has not at all."""
    decision = sealed_gate_decision(pack)
    forged = gate_problem(services, request.model, request.version, decision)
    if forged:
        raise ApprovalRefused(f"{forged}; nothing of this pack can be approved")
    lapsed = _waiver_end(decision, now) or _tier_raised(services, request.model, request.version, decision)
    if lapsed:
        raise ApprovalRefused(f"{lapsed}; run the release gate again and request approval again")
    asked = requesters(services, request.model, request.version)
    return VersionSubject(
        request.model,
        request.version,
        decision["risk_tier"],
        tuple(decision["trained_by"]),
        asked.verified,
        services.governed_model(request.model).owners.business_owner,
        named_requesters=asked.named,
    )


def _check_binding(request: ApprovalRequest, signed: SignedStatement) -> None:
    statement = signed.statement
    if statement.subject.get("evidence_digest") != request.pack_digest:
        raise ApprovalRefused(
            f"it approves evidence pack {statement.subject.get('evidence_digest', '?')[:12]}, "
            f"not the pending pack {request.pack_digest[:12]}"
        )
    if utc_timestamp(statement.issued_at) < request.requested_at:
        raise ApprovalRefused("it was signed before the pending approval request")


def _refuse_if_rejected(
    services: Services, request: ApprovalRequest, signed: SignedStatement, ledger: bool = True
) -> None:
    """Refuse once someone allowed to reject this pack did (a rejection Cedar refused vetoes nothing), under any
    request of it: a rejected pack is never released."""
    rejections = _rejections(services, request.model, request.version, request.pack_digest)
    if rejections:
        reason = (
            f"{rejections[0].actor} rejected this evidence pack at {rejections[0].ts}; a rejected pack is never "
            "released: run the release gate again for a new one"
        )
        if ledger:
            _ledger_refusal(services, request, signed, reason)
        raise ApprovalRefused(reason)


def _authorised(
    services: Services,
    request: ApprovalRequest,
    subject: VersionSubject,
    signed: SignedStatement,
    now: datetime,
    ledger: bool = True,
    approvers: int = 1,
) -> Approval:
    """The approval or rejection Cedar allows, given how many approvers' approvals stand (this one included);
    an approval Cedar refuses only for want of a second approver comes back `awaiting_second_approver`."""
    statement = signed.statement
    roster, bundle = services.roster, services.policies
    context = approval_context(statement.issued_at, now, approvers) if statement.action == "approve" else {}
    decision = authorize(bundle, roles_of(roster), statement.principal, statement.action, subject, context)
    awaiting = not decision.allowed and decision.rules == (SECOND_APPROVER,)
    if not decision.allowed and not awaiting:
        reason = " ".join(decision.reasons)
        if ledger:
            _ledger_refusal(services, request, signed, reason)
        raise ApprovalRefused(f"{statement.action} by {statement.principal} refused: {reason}")
    return Approval(
        model=request.model,
        version=request.version,
        principal=statement.principal,
        roles=tuple(sorted(roster.principal(statement.principal).roles)),
        issued_at=utc_timestamp(statement.issued_at),
        comment=statement.comment,
        statement_digest=signed.digest,
        evidence_digest=request.pack_digest,
        policy_digest=bundle.digest,
        awaiting_second_approver=awaiting,
    )


def _rejections(services: Services, model: str, version: str, pack: str) -> list[events.ApprovalRejected]:
    """The ledgered (Cedar-allowed) rejections of this evidence pack, oldest first."""
    found = services.ledger.events(events.ApprovalRejected, model=model, version=version)
    return [e for e in found if e.evidence_pack == pack]


def _ledger_refusal(services: Services, request: ApprovalRequest, signed: SignedStatement, reason: str) -> None:
    services.ledger.append(
        events.ApprovalDecisionRefused(
            actor=signed.statement.principal,
            model=request.model,
            version=request.version,
            statement=signed.digest,
            evidence_pack=request.pack_digest,
            statement_action=signed.statement.action,
            reason=reason,
        )
    )


def _request(services: Services, requested: events.ApprovalRequested) -> ApprovalRequest:
    return ApprovalRequest(
        model=requested.model,
        version=requested.version,
        pack_digest=requested.evidence_pack,
        pack_path=str(sealed_pack_dir(services.settings, requested.model, requested.version, requested.evidence_pack)),
        requested_at=requested.ts,
        entry_hash=requested.entry_hash,
        seq=requested.seq,
        requested_by=requested.requested_by,
    )
