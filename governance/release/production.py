"""Production as the signed record says it is: a model's verified champion and kill switch.

A database row (deployments, kill switches), the MLflow `champion` alias and a run tag are caches. What
moves production or the safe state is derived here from ledger events and the signed statements behind
them, verified where it is used (serving, recovery, rollback, status, lineage, trace):

- the champion is the version of the latest completed move (deploy or rollback) whose authority verifies.
  A deploy's authority is an `approve` statement of that version's sealed evidence pack, signed by a person
  in the roster with their roster key; the pack must still verify and name the artifact the move deployed.
  A rollback needs that too (the version was approved once) and its own signed `rollback` statement, recorded
  after the move it undoes;
- the kill switch is as the latest kill-switch event whose `disable`/`enable` statement verifies and which
  Cedar allows that principal says.

A move or flip whose authority does not verify is skipped (the last verified state holds) and is an
incident, and so is every cache that disagrees with the verified state. `record_incidents` ledgers each
new incident once (`events.ProductionIncident`); status, lineage and trace report them with a non-zero exit.
Signatures are checked against the roster of now: a principal removed from the roster no longer vouches
for anything, so re-approve what they approved before removing them (docs/operations.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from governance import events
from governance.digests import digest_of
from governance.errors import GovernanceError
from governance.objectstore import sealed_pack_dir
from governance.policy.authz import ModelSubject, VersionSubject, approval_context, authorize, roles_of
from governance.policy.evidence import RISK_TIERS
from governance.registry import parse_version_key, version_key
from governance.release import evidence_pack
from governance.release.approvals import gate_problem, sealed_gate_decision, spent_until
from governance.release.requests import requesters
from governance.release.services import Services
from governance.timestamps import MAX_CLOCK_SKEW, parse_utc, utc_timestamp
from governance.trust.roster import Roster
from governance.trust.statements import SignedStatement
from governance.trust.store import Accepted, StatementRefused, authentic

AUTOMATION = "automation"
# Production rests on facts and digests: an altered entry is refused, an altered detail only dropped (an edited
# reason must not stop containment; `govern ledger verify` names it).
FACTS = "facts"
MAX_INCIDENT_TEXT = 2000  # characters of an incident's description the ledger keeps (its digest is of these)


@dataclass(frozen=True)
class Production:
    """What may be served for a model, as verified now, and every way the record or the caches disagree."""

    model: str
    champion: int | None
    move: events.MoveStep | None  # the completed move that made it champion
    kill_switch: bool
    flip: events.KillSwitchFlipped | None  # the verified flip that set the kill switch
    incidents: tuple[str, ...]
    # Incidents of completed moves the caches record and the ledger does not: a later move's record may have
    # been removed (its champion may be one a person moved away from), so serving never switches to `champion`
    # while one stands: at the first poll it keeps what it serves, and once it sees it at two polls in a row it
    # answers in the safe state.
    unrecorded_moves: tuple[str, ...] = ()

    @property
    def artifact(self) -> str | None:
        return self.move.artifact if self.move else None


def confirmed_production(services: Services, model: str, pause_seconds: float = 0.5) -> Production:
    """`verified_production`, with only the incidents found again after a pause: a governed move or flip writes
    its caches (alias, rows) a moment before its ledger event, and that moment is no incident."""
    first = verified_production(services, model)
    if not first.incidents:
        return first
    time.sleep(pause_seconds)
    again = verified_production(services, model)
    return replace(again, incidents=tuple(i for i in again.incidents if i in first.incidents))


def verified_production(services: Services, model: str) -> Production:
    """The model's verified champion and kill switch, with the incidents found on the way (caches included)."""
    roster = services.roster
    incidents: list[str] = []
    completed = _completed(services, model)  # read once: serving derives production at every poll
    move = _verified_move(services, roster, completed, incidents)
    flip = _verified_flip(services, roster, model, incidents)
    production = Production(
        model=model,
        champion=parse_version_key(move.version)[1] if move else None,
        move=move,
        kill_switch=flip is not None and flip.disabled,
        flip=flip,
        incidents=(),
    )
    unrecorded, edited = _rows_disagree(services, model, completed)
    incidents += _caches_disagree(services, production) + unrecorded + edited + _gated_below_tier(services, move)
    return replace(production, incidents=tuple(incidents), unrecorded_moves=tuple(unrecorded))


def record_incidents(
    services: Services, model: str, incidents: tuple[str, ...] | list[str], actor: str
) -> list[events.ProductionIncident]:
    """Ledger each incident not ledgered before for this model (an incident is named by the digest of its text).
    An entry counts as ledgered only if its digest is that of its own text: an entry appended ahead with the
    digest of a predictable incident and a soothing text would otherwise keep the real one out of the ledger."""
    if not incidents:
        return []
    recorded = services.ledger.events(events.ProductionIncident, model=model, checked=False)
    seen = {i.incident for i in recorded if i.incident == _incident_digest(model, i.description)}
    fresh = []
    for text in incidents:
        description = text[:MAX_INCIDENT_TEXT]
        incident = _incident_digest(model, description)
        if incident not in seen:
            seen.add(incident)
            fresh.append(
                events.ProductionIncident(actor=actor, model=model, incident=incident, description=description)
            )
    if fresh:
        services.ledger.append_many(fresh)
    return fresh


def _incident_digest(model: str, description: str) -> str:
    return digest_of({"model": model, "incident": description})


def open_incidents(services: Services, production: Production) -> list[str]:
    """What disagrees with the signed record now, and the incidents ledgered since the last verified signed
    action on production (a move or a kill-switch flip): until a person acts again, they stand."""
    acted = max((e.seq for e in (production.move, production.flip) if e is not None), default=0)
    ledgered = [
        _as_ledgered(i)
        for i in services.ledger.events(
            events.ProductionIncident, model=production.model, since_seq=acted, checked=False
        )
    ]
    return list(dict.fromkeys([*production.incidents, *ledgered]))


def _as_ledgered(entry: events.ProductionIncident) -> str:
    """An incident entry's text; one the project did not write (its digest is not of its text) is named as such."""
    if entry.incident == _incident_digest(entry.model, entry.description):
        return entry.description
    return f"ledger entry {entry.seq} is not an incident the project recorded (its digest is not of its text): {entry.description}"


# --- moves ---------------------------------------------------------------------------------------------


def _completed(services: Services, model: str) -> list[events.MoveStep]:
    return services.ledger.history(events.MOVE_COMPLETED, model=model, checked=FACTS)


def _verified_move(
    services: Services, roster: Roster, completed: list[events.MoveStep], incidents: list[str]
) -> events.MoveStep | None:
    """The latest completed move, if its authority verifies. If it does not, nothing is served (the safe state):
    falling back to an older move would restore a version a person moved away from."""
    if not completed:
        return None
    move = completed[-1]
    problem = _replays(completed).get(move.seq) or move_problem(services, roster, move)
    if problem is None:
        return move
    incidents.append(
        f"{move.action} #{move.seq} to {move.version} does not verify: {problem}; serving answers in the safe state"
    )
    return None


def verified_champion(services: Services, model: str) -> events.MoveStep | None:
    """The move that made the current champion, if it verifies (else None: the safe state)."""
    return _verified_move(services, services.roster, _completed(services, model), [])


def deployed_pack(moves: list[events.MoveStep], version: str) -> str | None:
    """The evidence pack the latest of these verified moves to `version` deployed (its approval signed that digest),
    or None: what lineage, the console and the evidence export show for a deployed version, whatever request entry
    (unsigned) came after it."""
    return next((m.evidence_pack for m in reversed(moves) if m.version == version), None)


def verified_moves(services: Services, model: str) -> list[events.MoveStep]:
    """Every completed move of the model whose authority verifies, oldest first (forgeries left out)."""
    roster = services.roster
    completed = _completed(services, model)
    replays = _replays(completed)
    return [move for move in completed if move.seq not in replays and move_problem(services, roster, move) is None]


def replaced(moves: list[events.MoveStep]) -> list[tuple[events.MoveStep, int | None]]:
    """Each verified move with the version it replaced as champion: the one the verified move before it made
    champion (None for the first), never the entry's own `previous_version`, which is copied from a deployments
    row a writer of the control store can change."""
    before = [None, *(parse_version_key(m.version)[1] for m in moves)]
    return list(zip(moves, before, strict=False))


def rollback_signer(services: Services, move: events.MoveStep) -> str | None:
    """Who signed the statement a verified rollback names (the system principal for monitoring's), not the
    entry's or the row's `actor`; None for a deployment, which a person's approval authorises."""
    return _principal_of(services, move.statement) if move.kind == "rollback" and move.statement else None


def _replays(completed: list[events.MoveStep]) -> dict[int, str]:
    """Moves that reuse a deployment or the authority of an earlier one: a deployment completes once, an approval
    authorises one deployment, a rollback statement one rollback. A completion recorded again right after itself
    (a recovery racing the move it recovers) is the same move."""
    deployments: set[int] = set()
    owner: dict[str, int] = {}
    found = {}
    previous: events.MoveStep | None = None
    for move in completed:
        authority = move.statement if move.kind == "rollback" else move.approval
        if previous is not None and move.deployment_id == previous.deployment_id and _facts(move) == _facts(previous):
            continue  # recovery and the mover both ledgered the same completion: the same move, recorded twice
        previous = move
        if move.deployment_id in deployments:
            found[move.seq] = f"deployment #{move.deployment_id} already completed"
        elif authority is None:
            found[move.seq] = "it names no signed authority"
        elif owner.setdefault(authority, move.deployment_id) != move.deployment_id:
            found[move.seq] = (
                f"it reuses the authority {authority[:12]} that deployment #{owner[authority]} already used"
            )
        deployments.add(move.deployment_id)
    return found


def approved_artifact(moves: list[events.MoveStep], version: int) -> str | None:
    """The approved artifact digest a verified move to `version` deployed; None if none did."""
    found = [m.artifact for m in moves if parse_version_key(m.version)[1] == version]
    return found[-1] if found else None


def move_problem(services: Services, roster: Roster, move: events.MoveStep) -> str | None:
    """Why this move's authority does not verify; None when it does. A step that completes a move must follow
    the move's recorded start with the same facts; its statements are checked as of that start, and the approval's
    age and any rejection as of the step itself (a move started early and completed late is judged late)."""
    started = move if move.step == "started" else _start_of(services, move)
    if started is None:
        return f"the ledger records no start of deployment #{move.deployment_id}"
    if move is not started and _facts(move) != _facts(started):
        return f"it does not complete deployment #{move.deployment_id} as that was started"
    backdated = _backdated(services, started) or _backdated(services, move)
    if backdated:
        return backdated
    problem = approval_problem(services, roster, started, move)
    if problem or move.kind == "deploy":
        return problem
    if move.statement is None:
        return "the rollback names no signed rollback statement"
    problem = (
        statement_problem(
            services, roster, move.statement, "rollback", at=started.ts, model=move.model, version=move.version
        )
        or _rollback_problem(services, started)
        or _undoes_later_move(services, move, move.statement)
    )
    if problem:
        return problem
    principal = _principal_of(services, move.statement)
    decision = authorize(
        services.policies,
        roles_of(roster),
        principal,
        "rollback",
        ModelSubject(move.model),
        {"target_version": move.version, "target_approved": True},
    )
    return None if decision.allowed else f"Cedar refuses {principal}'s rollback: {' '.join(decision.reasons)}"


def _rollback_problem(services: Services, started: events.MoveStep) -> str | None:
    """Why a rollback's own facts do not stand: its statement was refused when it was signed (a refused rollback
    leaves a signed statement behind), or no deployment of that version on the approval it names came before it
    (a rollback returns only to a version deployed before; the approval itself is verified with the move)."""
    refusals = services.ledger.events(
        events.DeploymentRefused, model=started.model, version=started.version, checked=FACTS
    )  # a refused rollback is ledgered under the version its statement names, as the move is
    for refused in refusals:
        if refused.statement == started.statement:
            return f"rollback statement {(started.statement or '')[:12]} was refused at {refused.ts}"
    for deployed in services.ledger.events(
        events.DeploymentCompleted, model=started.model, version=started.version, checked=FACTS
    ):
        if deployed.seq < started.seq and (deployed.evidence_pack, deployed.approval) == (
            started.evidence_pack,
            started.approval,
        ):
            return None
    return f"no deployment of {started.version} on approval {started.approval[:12]} came before it"


def _undoes_later_move(services: Services, move: events.MoveStep, statement: str) -> str | None:
    """Why a rollback's statement cannot undo the move before it: the store recorded it before that move
    completed (a rollback that failed, or never ran, left it unused, kept for after a person moved production
    again). The move it undoes is the latest completion of another deployment before this step (a move completed
    while the rollback ran is undone too, and its statement did not know of it)."""
    before = (m for m in reversed(_completed(services, move.model)) if m.seq < move.seq)
    undone = next((m for m in before if m.deployment_id != move.deployment_id), None)
    if undone is None or not _recorded_before(services, statement, move.model, move.version, undone):
        return None
    return (
        f"rollback statement {statement[:12]} was recorded before {undone.action} #{undone.seq}, the move it "
        "would undo: a person's later move is never undone by an older statement"
    )


def _recorded_before(services: Services, digest: str, model: str, version: str | None, entry: events.Event) -> bool:
    """Whether the store recorded the statement `digest` (about `model`, and `version` when given) before ledger
    `entry`: in ledger order where the ledger recorded it, else by its signed date. Records are read unchecked: an
    entry edited or deleted elsewhere in the model's history must not stall the check (`ledger verify` names it),
    and a record appended later never counts before the first."""
    recorded = next(
        (
            r.seq
            for r in services.ledger.history(
                events.StatementRecorded, model=model, version=version, checked=False, typed=False
            )
            if r.statement == digest
        ),
        None,
    )
    if recorded is not None:
        return recorded < entry.seq
    return utc_timestamp(_signed(services, digest).statement.issued_at) <= entry.ts


def _backdated(services: Services, entry: events.Event) -> str | None:
    """Why an entry that a statement's validity is judged at is dated by hand (before an entry the ledger
    appended earlier: see `Ledger.misdated`); None when it is not."""
    if entry.seq in services.ledger.misdated():
        return f"ledger entry {entry.seq} is dated {entry.ts}, before an entry appended earlier: a date set by hand"
    return None


def _start_of(services: Services, move: events.MoveStep) -> events.MoveStep | None:
    starts = [
        s
        for s in services.ledger.history(events.MoveStep, model=move.model, version=move.version, checked=FACTS)
        if s.step == "started" and s.deployment_id == move.deployment_id and s.seq < move.seq
    ]
    return starts[0] if starts else None


def _facts(move: events.MoveStep) -> tuple:
    return (move.kind, move.version, move.artifact, move.evidence_pack, move.approval, move.statement)


def _cosigners(
    services: Services,
    roster: Roster,
    subject,
    evidence: str,
    signed: SignedStatement,
    signed_within: tuple[str, str],
    deployed: datetime | None,
) -> set[str]:
    """Other principals whose authentic approval of the same evidence, signed within (after, until] (after any
    earlier deployment of the pack spent the approvals before it, and before the move), Cedar allowed (counting a
    second approver, and at its age when `deployed`): with an unknown requester, two of them must stand behind a
    deployment."""
    found, (after, until) = set(), signed_within
    for recorded in services.statements.find(action="approve", model=subject.model, version=subject.version):
        other = recorded.signed.statement
        if other.principal == signed.statement.principal or other.subject.get("evidence_digest") != evidence:
            continue
        if not after < utc_timestamp(other.issued_at) <= until:
            continue
        try:
            authentic(recorded.signed, roster)
        except StatementRefused:
            continue
        context = approval_context(other.issued_at, deployed or other.issued_at, 2)
        if authorize(services.policies, roles_of(roster), other.principal, "approve", subject, context).allowed:
            found.add(other.principal)
    return found


def _rejection(services: Services, roster: Roster, subject, evidence: str, step: events.MoveStep) -> str | None:
    """Why a rejection vetoes deploying this evidence pack at this step of a move: before it, the ledger recorded
    a rejection of the pack, or the store accepted a rejection of it by someone Cedar lets reject the version
    (which a ledger writer may have kept out of the ledger to grant an approval around it, or whose statement row
    a database writer may have relabelled or deleted since). Either one vetoes: it only stops a move."""
    for rejected in services.ledger.events(
        events.ApprovalRejected, model=subject.model, version=subject.version, checked=FACTS
    ):
        if rejected.evidence_pack == evidence and rejected.seq < step.seq:
            return _vetoed(rejected.actor, evidence, rejected.ts, rejected.statement)
    for accepted in services.statements.ever_recorded("reject", subject.model, subject.version):
        signed = _counting(accepted, roster)
        if signed is None or signed.subject.get("evidence_digest") != evidence or not _before(signed, step):
            continue
        if authorize(services.policies, roles_of(roster), signed.principal, "reject", subject, {}).allowed:
            return _vetoed(signed.principal, evidence, signed.issued, signed.digest)
    return None


@dataclass(frozen=True)
class _Statement:
    """What an accepted statement says: from its row, which still verifies, or from the ledger's record of it."""

    principal: str
    issued: str
    digest: str
    subject: Mapping[str, str | None]
    comment: str
    ledgered_at: int | None  # the seq of its `StatementRecorded` entry


def _counting(accepted: Accepted, roster: Roster) -> _Statement | None:
    """What a statement found by `StatementStore.ever_recorded` says, if it still counts: its row verifies with
    its signer's roster key, or, its row gone or altered, the ledger recorded that the store accepted it from a
    principal still in the roster. None when it no longer counts."""
    row, entry = accepted.row, accepted.entry
    seq = entry.seq if entry else None
    if row is None:
        if entry is None or entry.actor not in roster.principals:
            return None
        subject = {"model": entry.model, "version": entry.version, "evidence_digest": entry.evidence_digest}
        gone = f"its statement row is gone or altered; ledger entry {entry.seq} recorded it"
        return _Statement(entry.actor, accepted.issued, accepted.digest, subject, gone, seq)
    try:
        authentic(row.signed, roster)
    except StatementRefused:
        return None
    statement = row.signed.statement
    return _Statement(statement.principal, accepted.issued, accepted.digest, statement.subject, statement.comment, seq)


def _before(statement: _Statement, step: events.MoveStep) -> bool:
    """Whether a statement came before a move's step: in ledger order where the ledger recorded it (its first
    record; a ledger writer can set a step's date back, not its place), else by its signed date."""
    if statement.ledgered_at is not None:
        return statement.ledgered_at < step.seq
    return statement.issued <= step.ts


def _vetoed(principal: str, evidence: str, at: str, statement: str) -> str:
    return (
        f"{principal} rejected evidence pack {evidence[:12]} at {at} (statement {statement[:12]}): "
        "a rejected pack is never released"
    )


def approval_problem(
    services: Services, roster: Roster, started: events.MoveStep, ended: events.MoveStep
) -> str | None:
    """Why the approval a move names does not authorise deploying its artifact; None when it does: a person's
    signed approve statement, signed before the move `started`, bound to the sealed pack the move names (which
    still verifies and names that artifact), granted in the ledger, and one Cedar lets that person make on this
    version (roles, separation of duties). A deploy is judged at the age its approval had when the move `ended`
    (the step verified; a rollback returns to a version approved long before), and a rejection of the pack
    before that step vetoes it, however early the move started."""
    model, version, approval = started.model, started.version, started.approval
    evidence, artifact, at = started.evidence_pack, started.artifact, started.ts
    problem = statement_problem(
        services, roster, approval, "approve", model=model, version=version, evidence_digest=evidence
    )
    if problem:
        return f"approval {approval[:12]}: {problem}"
    signed = _signed(services, approval)
    if signed.statement.issued_at > parse_utc(at) + MAX_CLOCK_SKEW:  # the approver's clock may run ahead
        return f"approval {approval[:12]} was signed after the move it authorises"
    spent = spent_until(services, model, version, evidence, started.seq) if started.kind == "deploy" else ""
    if utc_timestamp(signed.statement.issued_at) <= spent:
        return f"approval {approval[:12]} was spent on the deployment of this pack completed at {spent}"
    if not any(
        g.statement == approval
        for g in services.ledger.events(events.ApprovalGranted, model=model, version=version, checked=FACTS)
    ):
        return f"approval {approval[:12]} was never granted (no {events.ApprovalGranted.action} entry: Cedar did not allow it)"
    principal = signed.statement.principal
    if AUTOMATION in roster.principals[principal].roles:
        return f"approval {approval[:12]} was signed by automation ({principal}), not a person"
    try:
        (sealed, tier, trained_by, waived_until), gate = _sealed_pack(
            str(sealed_pack_dir(services.settings, model, version, evidence)), evidence
        )
    except (GovernanceError, OSError, ValueError, KeyError) as exc:
        return f"the approved evidence pack {evidence[:12]} does not verify: {exc}"
    forged = gate_problem(services, model, version, gate)
    if forged:
        return forged
    if sealed != artifact:
        return f"it deployed artifact {artifact[:12]}, but the approved evidence names {sealed[:12]}"
    if waived_until and waived_until <= (ended.ts if started.kind == "deploy" else at):
        return f"the gate passed on a waiver that ended at {waived_until}, before the move"
    try:
        governed = services.governed_model(model)
        asked = requesters(services, model, version)
        subject = VersionSubject(  # who may approve: from the pack the approval signed, never a ledger copy
            model,
            version,
            _stricter(tier, governed.risk_tier),
            trained_by,
            asked.verified,
            governed.owners.business_owner,
            named_requesters=asked.named,
        )
    except GovernanceError as exc:
        return f"approval {approval[:12]}: {exc}"
    rejection = _rejection(services, roster, subject, evidence, ended)
    if rejection:
        return rejection
    issued = signed.statement.issued_at
    deployed = parse_utc(ended.ts) if started.kind == "deploy" else None
    until = utc_timestamp(parse_utc(at) + MAX_CLOCK_SKEW)
    approvers = len(_cosigners(services, roster, subject, evidence, signed, (spent, until), deployed) | {principal})
    context = approval_context(issued, deployed or issued, approvers)
    decision = authorize(services.policies, roles_of(roster), principal, "approve", subject, context)
    if not decision.allowed:
        return f"Cedar refuses {principal}'s approval: {' '.join(decision.reasons)}"
    return None


@lru_cache(maxsize=256)
def _sealed_pack(path: str, digest: str) -> tuple[tuple[str, str, tuple[str, ...], str], dict]:
    """What a sealed pack says: the artifact digest, and the risk tier, trainers and end of any waiver ("" when
    none) of its sealed gate decision; and that decision. A pack is verified once per process (its digest binds
    it)."""
    pack = evidence_pack.verify(Path(path), digest)
    decision = sealed_gate_decision(pack)
    if decision.get("risk_tier") not in RISK_TIERS:
        raise GovernanceError(f"its sealed gate decision names no risk tier ({decision.get('risk_tier')!r})")
    waived_until = decision.get("valid_until") or ""
    if waived_until:
        waived_until = utc_timestamp(parse_utc(waived_until))
    return (pack.facts["artifact_sha256"], decision["risk_tier"], tuple(decision["trained_by"]), waived_until), decision


def _gated_below_tier(services: Services, move: events.MoveStep | None) -> list[str]:
    """The verified champion's gate judged it under a lower risk tier than its model has now (the tier was raised
    while it was live): it stays served, with the raised tier's approver rules (`approval_problem`), but no
    deploy, rollback or recovery moves to it again until its gate runs under the raised tier."""
    if move is None:
        return []
    pack = sealed_pack_dir(services.settings, move.model, move.version, move.evidence_pack)
    (_, sealed, _, _), _ = _sealed_pack(str(pack), move.evidence_pack)  # read when the move verified: cached
    configured = services.governed_model(move.model).risk_tier
    if _stricter(sealed, configured) == sealed:
        return []
    return [
        f"{move.version} is served on a gate that judged it as {sealed} risk, but {move.model}'s risk tier is now "
        f"{configured}: run its release gate again (and approve and deploy what it seals) or deploy another version"
    ]


def _stricter(sealed: str, configured: str) -> str:
    """The higher of two risk tiers: a tier raised since the gate judged the version binds its approvals."""
    return min(sealed, configured, key=RISK_TIERS.index)


def _signed(services: Services, digest: str) -> SignedStatement:
    recorded = services.statements.by_digest(digest)
    if recorded is None:
        raise GovernanceError(f"no signed statement {digest[:12]} is recorded")
    return recorded.signed


def _principal_of(services: Services, digest: str) -> str:
    return _signed(services, digest).statement.principal


def statement_problem(
    services: Services,
    roster: Roster,
    digest: str,
    action: str,
    at: str | None = None,
    signer: str | None = None,
    **subject: str,
) -> str | None:
    """Why the statement with this digest is not an authentic `action` statement on `subject` (valid at `at`, and
    signed by `signer`, when given: the actor an entry names is a cache of who signed); None if it is. A
    statement that cannot even be read is a problem, not an error."""
    try:
        recorded = services.statements.by_digest(digest)
    except GovernanceError as exc:
        return f"statement {digest[:12]} cannot be read: {exc}"
    if recorded is None:
        return f"no signed statement {digest[:12]} is recorded"
    statement = recorded.signed.statement
    if at is not None and not utc_timestamp(statement.issued_at) <= at < utc_timestamp(statement.expires_at):
        return (
            f"statement {digest[:12]} was not valid at {at} (issued {utc_timestamp(statement.issued_at)}, "
            f"expires {utc_timestamp(statement.expires_at)})"
        )
    if statement.action != action:
        return f"statement {digest[:12]} is a {statement.action!r}, not a {action!r}"
    if signer is not None and statement.principal != signer:
        return f"statement {digest[:12]} was signed by {statement.principal}, not by {signer}"
    differs = {k: v for k, v in subject.items() if statement.subject.get(k) != v}
    if differs:
        return f"statement {digest[:12]} is about {statement.subject}, not {differs}"
    try:
        authentic(recorded.signed, roster)
    except StatementRefused as refusal:
        return refusal.reason
    return None


# --- kill switch ---------------------------------------------------------------------------------------


def _verified_flip(
    services: Services, roster: Roster, model: str, incidents: list[str]
) -> events.KillSwitchFlipped | None:
    """The latest kill-switch flip, if a fresh, Cedar-allowed statement backs it and no earlier flip used that
    statement. A latest flip that does not verify holds the kill switch on (see `verified_production`), and so
    does a signed disable recorded after it that the ledger has no flip for."""
    flips = services.ledger.history(events.KillSwitchFlipped, model=model, checked=FACTS)
    flip = _latest_flip(services, roster, model, flips, incidents) if flips else None
    if flip is not None and flip.disabled:
        return flip
    held = _unledgered_disable(services, roster, model, flips)
    if held is None:
        return flip
    incidents.append(
        f"{held.actor}'s signed disable {held.statement[:12]} (issued {held.ts}) is recorded, but the ledger has no "
        f"{events.KillSwitchOn.action} for it; the kill switch counts as on"
    )
    return held


def _latest_flip(
    services: Services,
    roster: Roster,
    model: str,
    flips: list[events.KillSwitchFlipped],
    incidents: list[str],
) -> events.KillSwitchFlipped:
    flip = flips[-1]
    problem = flip_problem(services, roster, flip, flips[:-1])
    if problem is None:
        return flip
    incidents.append(f"{flip.action} #{flip.seq} does not verify: {problem}; the kill switch counts as on")
    return _UNVERIFIED_FLIP(flip)


def flip_problem(
    services: Services, roster: Roster, flip: events.KillSwitchFlipped, earlier: list[events.KillSwitchFlipped]
) -> str | None:
    """Why a kill-switch flip does not verify (its statement backed an `earlier` flip or came before the flip it
    overrides, is not a fresh statement of its action, is dated by hand, or Cedar refuses its signer); None when it
    does."""
    model, action = flip.model, "disable" if flip.disabled else "enable"
    problem = (
        f"statement {flip.statement[:12]} already backed an earlier flip"
        if flip.statement in {f.statement for f in earlier}
        else statement_problem(services, roster, flip.statement, action, at=flip.ts, model=model)
    )
    problem = problem or (_overtaken(services, flip, earlier[-1]) if earlier else None) or _backdated(services, flip)
    if problem is None:
        principal = _principal_of(services, flip.statement)
        subject = ModelSubject(model, services.governed_model(model).owners.business_owner)
        decision = authorize(services.policies, roles_of(roster), principal, action, subject)
        problem = None if decision.allowed else f"Cedar refuses {principal}: {' '.join(decision.reasons)}"
    return problem


def _overtaken(services: Services, flip: events.KillSwitchFlipped, previous: events.KillSwitchFlipped) -> str | None:
    """Why a flip's statement cannot override the flip before it: the store recorded it before that flip (an
    enable a failed flip left unused, kept for after a person switched the model off again)."""
    if _recorded_before(services, flip.statement, flip.model, None, previous):
        return (
            f"statement {flip.statement[:12]} was recorded before {previous.action} #{previous.seq}, the flip it "
            "would override: a person's later flip is never undone by an older statement"
        )
    return None


def _unledgered_disable(
    services: Services, roster: Roster, model: str, flips: list[events.KillSwitchFlipped]
) -> events.KillSwitchOn | None:
    """A stand-in flip for an authentic disable, one Cedar allows its signer now, recorded after the latest flip
    and backing none: the ledger should have its flip (one in flight is about to be; a ledger writer may have kept
    one out). Expired or not, it holds the kill switch on until a person flips it again. A `KillSwitchRefused`
    entry does not cancel it: a ledger writer can append one; Cedar, asked now, decides."""
    since = flips[-1].seq if flips else 0
    used = {f.statement for f in flips}
    after = flips[-1].ts if flips else ""
    subject = ModelSubject(model, services.governed_model(model).owners.business_owner)
    for accepted in services.statements.ever_recorded("disable", model, since_seq=since, issued_after=after):
        if accepted.issued <= after or accepted.digest in used:  # before the signature check: polled every second
            continue
        signed = _counting(accepted, roster)
        if signed is None:
            continue
        decision = authorize(services.policies, roles_of(roster), signed.principal, "disable", subject)
        if decision.allowed:
            return events.KillSwitchOn(
                actor=signed.principal,
                model=model,
                statement=signed.digest,
                policy=decision.policy_digest,
                reason=signed.comment,
                seq=since,
                ts=signed.issued,
                entry_hash=flips[-1].entry_hash if flips else "",
            )
    return None


def _UNVERIFIED_FLIP(flip: events.KillSwitchFlipped) -> events.KillSwitchOn:  # noqa: N802 (reads as a constant)
    """A stand-in flip that holds the kill switch on while the latest real one does not verify."""
    return events.KillSwitchOn(
        actor="system:verification",
        model=flip.model,
        statement=flip.statement,
        policy=flip.policy,
        reason=f"{flip.action} #{flip.seq} does not verify",
        seq=flip.seq,
        ts=flip.ts,
        entry_hash=flip.entry_hash,
    )


# --- caches ----------------------------------------------------------------------------------------------


def _caches_disagree(services: Services, production: Production) -> list[str]:
    model, found = production.model, []
    alias = services.registry.champion(model)
    if alias != production.champion:
        found.append(
            f"the MLflow champion alias points at {_named(model, alias)}, but the verified champion is "
            f"{_named(model, production.champion)}"
        )
    switch = services.control.kill_switch(model)
    if switch.disabled != production.kill_switch:
        found.append(
            f"the kill switch row says {'on' if switch.disabled else 'off'}, but the latest verified "
            f"statement says {'on' if production.kill_switch else 'off'}"
        )
    return found


def _rows_disagree(services: Services, model: str, completed: list[events.MoveStep]) -> tuple[list[str], list[str]]:
    """Completed deployments rows the ledger records no completion of, and those that say another move than the
    ledger's completion of the same deployment (edited)."""
    recorded = {m.deployment_id: m for m in completed}
    unrecorded, edited = [], []
    for row in services.control.deployments(model, "completed"):
        move = recorded.get(row.id)
        if move is None:
            unrecorded.append(
                f"deployments row #{row.id} says {row.kind} to v{row.version} completed, but the ledger records no "
                "such move: serving answers in the safe state until it does"
            )
        elif (row.kind, row.version, row.artifact_sha256) != (
            move.kind,
            parse_version_key(move.version)[1],
            move.artifact,
        ):
            edited.append(
                f"deployments row #{row.id} says {row.kind} to v{row.version}, but ledger entry {move.seq} records "
                f"{move.kind} to {move.version}: the row was edited"
            )
    return unrecorded, edited


_ANY_VERSION = re.compile(r"\bv\d+\b|-v\d+\b")


def incidents_about(services: Services, model: str, version: int | None) -> list[str]:
    """The model's disagreements with the signed record now (confirmed after a pause) that concern `version`:
    those naming it, and those naming no version (the kill switch's, for one)."""
    named = re.compile(rf"\bv{version}\b|{re.escape(version_key(model, version))}\b") if version else None
    return [
        i
        for i in confirmed_production(services, model).incidents
        if not _ANY_VERSION.search(i) or (named is not None and named.search(i))
    ]


def _named(model: str, version: int | None) -> str:
    return version_key(model, version) if version else "no version"
