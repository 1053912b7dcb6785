"""Acting on a window's judgement as the policy says: contain the harm, request retraining.

Runs under the model's remediation lease and acts only on a judgement of the
current champion: a window judged on a version that is no longer the champion
(an earlier alert already rolled it back), harm while the kill switch is
already on, or harm in a window completed before a person re-enabled the model
(their decision stands), changes nothing. At most one retraining request per
champion deployment.

Containment: the rollback target is the most recent earlier approved version
that automation may restore. Never one monitoring itself contained and no
person has put back since; and only if the policy permits `auto_rollback_target`
given whether a person rolled back away from it and whether its approval was
granted under the policy and roster in force (by default: none of those).
Each more recent version passed over is recorded with why. The target passes
when the policy, judging the same window re-scored by it against its own
reference, calls for no containment. The policy then permits `auto_rollback` or
`auto_disable` (policies/monitoring.cedar); a refused rollback is asked again
as if the target did not pass. The rollback and the kill switch are the core's
own actions: signed by the system principal, authorised by Cedar, ledgered.
The decision itself, with the rules that made it, is the ledger entry
`events.RemediationDecided`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from governance import events
from governance.config import GovernedModel
from governance.errors import GovernanceError
from governance.monitoring.lease import remediation_lease
from governance.monitoring.monitor import Monitor
from governance.monitoring.policy import DISABLE, ROLLBACK, Judgement, containment, may_restore, rejudge
from governance.monitoring.retraining import MONITORING, RetrainingRefused, monitoring_requests, request_retraining
from governance.monitoring.windows import completed_at, read_window
from governance.objectstore import sealed_pack_dir
from governance.registry import parse_version_key, version_key
from governance.release.deployment import reconcile, rollback
from governance.release.evidence_pack import verify
from governance.release.kill_switch import set_kill_switch
from governance.release.production import (
    flip_problem,
    replaced,
    rollback_signer,
    verified_champion,
    verified_moves,
    verified_production,
)
from governance.release.services import SYSTEM, Services
from governance.trust.roster import Roster

ACTOR = "system:monitoring"
ROLLED_BACK, SWITCHED_OFF, RETRAINING = "rollback", "kill_switch", "retraining_requested"


@dataclass(frozen=True)
class Remediation:
    model: str
    version: int  # the version the window was judged on
    window: str
    stream: str
    actions: tuple[str, ...]  # what was done: rollback, kill_switch, retraining_requested
    notes: tuple[str, ...]  # why, and anything that was not done
    contained: bool  # False when the judgement called for containment and nothing contained it
    rollback_target: dict | None  # {"version", "passes", "summary"} when containment looked at one
    ledger_seq: int

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        done = ", ".join(self.actions) or "no action"
        return f"{version_key(self.model, self.version)} window {self.window}: {done}. " + " ".join(self.notes)


def remediate(monitor: Monitor, model: GovernedModel, recorded: dict, holder: str) -> Remediation:
    """Act on a recorded judgement (a monitoring report's), judged again under the policy in force."""
    judgement = rejudge(monitor.policies(), recorded)
    with remediation_lease(monitor.settings.ledger_url, model.name, holder):
        return _remediate(monitor, model, judgement)


def _remediate(monitor: Monitor, model: GovernedModel, judgement: Judgement) -> Remediation:
    services = monitor.services
    reconcile(services, model.name)
    move = verified_champion(services, model.name)  # rows and the alias are caches
    champion = parse_version_key(move.version)[1] if move else None
    actions: list[str] = []
    notes: list[str] = []
    target, contained = None, True
    if judgement.version != champion or move is None:
        notes.append(
            f"the window was judged on v{judgement.version} but the champion is now "
            f"{'v' + str(champion) if champion else 'unset'}: nothing to do"
        )
    else:
        if judgement.contain.allowed:
            contained, target = _contain(monitor, model, judgement, actions, notes)
        if judgement.retrain.allowed:
            _retrain(monitor, model, judgement, move, actions, notes)
    if not judgement.alert:
        notes.append("under the policy in force the window calls for nothing")
    entry = services.ledger.append(
        events.RemediationDecided(
            actor=ACTOR,
            model=model.name,
            version=version_key(model.name, judgement.version),
            policy=judgement.policy_digest,
            window=judgement.window,
            stream=judgement.stream,
            actions=tuple(actions),
            contained=contained,
            rollback_target=target,
            notes=tuple(notes),
            judgement=judgement.to_dict(),
        )
    )
    return Remediation(
        model.name,
        judgement.version,
        judgement.window,
        judgement.stream,
        tuple(actions),
        tuple(notes),
        contained,
        target,
        entry.seq,
    )


def _contain(
    monitor: Monitor, model: GovernedModel, judgement: Judgement, actions: list, notes: list
) -> tuple[bool, dict | None]:
    services = monitor.services
    try:
        production = verified_production(services, model.name)  # the kill switch row is a cache: never read here
    except GovernanceError as unreadable:
        notes.append(f"the signed record cannot be read ({unreadable}): serving holds the safe state")
        return True, None
    if production.kill_switch:
        notes.append("the kill switch is already on (the signed record says so): serving is in the safe state")
        return True, None
    complete = completed_at(monitor.log, model.name, judgement.window)
    enabled = production.flip
    if enabled is not None and enabled.actor != SYSTEM and enabled.ts > complete:
        notes.append(
            f"{enabled.actor} re-enabled the model at {enabled.ts} (signed, ledger entry {enabled.seq}), after this "
            f"window was complete ({complete}): a person's decision on it is not overridden"
        )
        return True, None
    target, passes, described = _rollback_target(monitor, model, judgement)
    reason = _reason(judgement)
    for verdict in containment(monitor.policies(), judgement, passes):
        if verdict.action == ROLLBACK:
            try:
                rollback(services, model.name, SYSTEM, services.system_key(), reason, to_version=target)
            except GovernanceError as refused:  # refused, or the system key unusable
                notes.append(f"rollback to v{target} failed: {refused}")
                return _switch_off(monitor, model, judgement, reason, actions, notes), described
            actions.append(ROLLED_BACK)
            notes.append(f"rolled back to v{target} ({_rules(verdict)})")
        elif verdict.action == DISABLE:
            return _switch_off(monitor, model, judgement, reason, actions, notes, verdict), described
    if not actions:
        notes.append("CONTAINMENT FAILED: the policy permits no containment for this harmful window")
    return bool(actions), described


def _switch_off(
    monitor: Monitor, model: GovernedModel, judgement: Judgement, reason: str, actions: list, notes: list, verdict=None
) -> bool:
    """The kill switch, if the policy permits it (asked again as if no rollback target passed)."""
    if verdict is None:
        verdict = next((v for v in containment(monitor.policies(), judgement, False) if v.action == DISABLE), None)
        if verdict is None:
            notes.append("CONTAINMENT FAILED: the policy does not permit the kill switch either")
            return False
    services = monitor.services
    try:
        set_kill_switch(services, model.name, True, SYSTEM, services.system_key(), reason)
    except GovernanceError as refused:  # refused (KillSwitchRefused), or the system key unusable
        notes.append(f"CONTAINMENT FAILED: the kill switch was refused: {refused}")
        return False
    actions.append(SWITCHED_OFF)
    notes.append(f"kill switch on ({_rules(verdict)}); a person re-enables with `govern enable`")
    return True


def _rollback_target(
    monitor: Monitor, model: GovernedModel, judgement: Judgement
) -> tuple[int | None, bool, dict | None]:
    """The most recent earlier approved version automation may restore, whether it passes on this window, and
    what was found: {"version", "passes", "summary", "skipped": [{"version", "reason"}, ...]}."""
    services = monitor.services
    moves = verified_moves(services, model.name)  # deployment rows and the alias are caches: never trusted here
    champion = moves[-1].version if moves else None
    candidates = [parse_version_key(v)[1] for v in dict.fromkeys(m.version for m in reversed(moves)) if v != champion]
    if not candidates:
        return None, False, None
    contained, skipped = _contained_by_monitoring(monitor, model, moves), []
    for target in candidates:
        reason = _why_not_restored(monitor, judgement, target, moves, contained)
        if reason:
            skipped.append({"version": target, "reason": reason})
            continue
        passes, summary = _judged_as(monitor, model, judgement, target)
        return target, passes, {"version": target, "passes": passes, "summary": summary, "skipped": skipped}
    passed_over = "; ".join(f"v{s['version']}: {s['reason']}" for s in skipped)
    return (
        None,
        False,
        {
            "version": None,
            "passes": False,
            "skipped": skipped,
            "summary": f"no earlier approved version may be restored automatically ({passed_over})",
        },
    )


def _judged_as(monitor: Monitor, model: GovernedModel, judgement: Judgement, target: int) -> tuple[bool, str]:
    """Whether `target`, re-scoring the harmful window, passes (the policy calls for no containment), and why."""
    window = read_window(monitor.log, model.name, judgement.first_seq, judgement.last_seq)
    concerns = tuple(m.concern for m in judgement.measurements)
    try:
        rescored, _ = monitor.judge(model, window, judgement.stream, concerns, as_version=target)
    except GovernanceError as exc:
        return False, f"v{target} cannot be judged: {exc}"
    return not rescored.contain.allowed, rescored.summary()


def _why_not_restored(
    monitor: Monitor, judgement: Judgement, target: int, moves: list[events.MoveStep], contained: set[int]
) -> str | None:
    """Why automation must not restore `target` (None: it may)."""
    if target in contained:
        return f"v{target} was contained by monitoring and no person has put it back since: not restored automatically"
    facts, problems = _restore_facts(monitor, judgement.model, target, moves)
    verdict = may_restore(monitor.policies(), judgement, facts)
    if verdict.allowed:
        return None
    return (
        "; ".join(problems or ["the monitoring policy permits no automatic restore of it"])
        + " (policy: auto_rollback_target not permitted)"
    )


def _restore_facts(monitor: Monitor, model: str, target: int, moves: list[events.MoveStep]) -> tuple[dict, list[str]]:
    """The auto_rollback_target context for `target`, and each fact against restoring it, for people."""
    problems = []
    away = _rolled_back_by_person(monitor.services, moves).get(target)
    if away is not None:
        problems.append(
            f"{rollback_signer(monitor.services, away)} rolled back away from v{target} (deployment #{away.deployment_id} at "
            f"{away.ts}) and no person has put it back since"
        )
    policy_ok, roster_ok, approval_problems = _approval_in_force(monitor, model, target, moves)
    facts = {
        "target_version": version_key(model, target),
        "rolled_back_by_person": away is not None,
        "approved_under_policy_in_force": policy_ok,
        "approved_under_roster_in_force": roster_ok,
    }
    return facts, problems + approval_problems


def _rolled_back_by_person(services: Services, moves: list[events.MoveStep]) -> dict[int, events.MoveStep]:
    """Versions a person rolled back away from, with that rollback, that no later move by a person (a deployment
    on an approval, a rollback) brought back. Who moved, and from which version, come from the signed record:
    the rollback statement's signer and the verified move before it."""
    away: dict[int, events.MoveStep] = {}
    for move, before in replaced(moves):
        if rollback_signer(services, move) != SYSTEM:
            away.pop(parse_version_key(move.version)[1], None)
            if move.kind == "rollback" and before is not None:
                away[before] = move
    return away


def _approval_in_force(
    monitor: Monitor, model: str, target: int, moves: list[events.MoveStep]
) -> tuple[bool, bool, list[str]]:
    """Whether the approval `target` was last deployed on was granted under the policy bundle in force (the one
    its sealed evidence pack names) and by a principal today's roster still gives the roles they approved with
    (the signed statement's signer); and what is not so. No ledger entry's copy of either counts."""
    key = version_key(model, target)
    move = [m for m in moves if m.version == key][-1]
    services = monitor.services
    try:
        pack = verify(sealed_pack_dir(services.settings, model, key, move.evidence_pack), move.evidence_pack)
        approver = services.statements.by_digest(move.approval)
        grants = services.ledger.events(events.ApprovalGranted, model=model, version=key)
    except (GovernanceError, OSError) as exc:  # nothing readable vouches for the approval
        return False, False, [f"{key}'s approval or evidence pack cannot be read: {exc}"]
    problems = []
    in_force, sealed = monitor.policies().digest, pack.facts.get("policy_digest", "")
    policy_ok = sealed == in_force
    if not policy_ok:
        problems.append(
            f"{key} was approved under policy {sealed[:12]}..., not the policy in force ({in_force[:12]}...)"
        )
    roster = services.roster
    principal = approver.signed.statement.principal if approver else None
    holder = roster.principals.get(principal or "")
    granted = next((g for g in grants if g.statement == move.approval), None)  # the first: a copy is forged
    roles = set(granted.roles) if granted and granted.actor == principal else set()
    roster_ok = holder is not None and bool(roles) and roles <= holder.roles
    if not roster_ok:
        problems.append(
            f"its approver {principal or 'unknown'} no longer holds {', '.join(sorted(roles)) or 'their roles'} "
            f"in the roster in force (version {roster.version})"
        )
    return policy_ok, roster_ok, problems


def _contained_by_monitoring(monitor: Monitor, model: GovernedModel, moves: list[events.MoveStep]) -> set[int]:
    """Versions monitoring rolled back from or switched off that no person has put back since (by a verified
    deploy or rollback to them, or a verified re-enable while they were champion): never restored automatically.
    `moves` are the verified moves; an entry that does not verify, or does not read, puts nothing back."""
    services, roster = monitor.services, monitor.services.roster
    verified = {m.seq for m in moves}
    contained, champion, flips = set[int](), None, list[events.KillSwitchFlipped]()
    history: list[events.Event] = services.ledger.events(
        (*events.MOVE_COMPLETED, events.KillSwitchFlipped, events.RemediationDecided),
        model=model.name,
        checked=False,  # containment must not stall on an edited entry
        typed=False,  # nor on a forged one of the wrong shape
    )
    for event in history:
        if isinstance(event, events.MoveStep) and event.seq in verified:
            champion = parse_version_key(event.version)[1]
            if event.actor != SYSTEM:
                contained.discard(champion)
        elif isinstance(event, events.KillSwitchFlipped):
            if _person_enabled(services, roster, event, flips):
                contained.discard(champion)
            if isinstance(event.statement, str):  # a forged flip may carry anything
                flips.append(event)
        elif isinstance(event, events.RemediationDecided):
            contained |= _contained_by(event)
    return contained


def _person_enabled(
    services: Services, roster: Roster, flip: events.KillSwitchFlipped, earlier: list[events.KillSwitchFlipped]
) -> bool:
    if flip.disabled or flip.actor == SYSTEM:
        return False
    try:
        return flip_problem(services, roster, flip, earlier) is None
    except (GovernanceError, TypeError, ValueError):  # a forged flip of the wrong shape puts nothing back
        return False


def _contained_by(decided: events.RemediationDecided) -> set[int]:
    """The version a remediation decision rolled back from or switched off, if it did and reads."""
    actions = decided.actions if isinstance(decided.actions, list | tuple) else ()
    if not {ROLLED_BACK, SWITCHED_OFF} & {a for a in actions if isinstance(a, str)}:
        return set()
    try:
        return {parse_version_key(decided.version)[1]}
    except (GovernanceError, TypeError, ValueError, AttributeError):
        return set()


def _retrain(
    monitor: Monitor, model: GovernedModel, judgement: Judgement, move: events.MoveStep, actions: list, notes: list
) -> None:
    services = monitor.services
    earlier = [
        e for e in monitoring_requests(services, model.name, checked=False) if e.deployment_id == move.deployment_id
    ]
    if earlier:
        notes.append(f"retraining was already requested for this deployment (ledger entry {earlier[0].seq})")
        return
    details = {
        "deployment_id": move.deployment_id,
        "window": judgement.window,
        "stream": judgement.stream,
        "rules": tuple(f.rule for f in judgement.retrain.findings),
    }
    try:
        entry = request_retraining(services, model.name, MONITORING, _reason(judgement, judgement.retrain), details)
    except RetrainingRefused as refused:
        notes.append(str(refused))
        return
    actions.append(RETRAINING)
    notes.append(f"retraining requested (ledger entry {entry.seq}); the candidate will wait for approval")


def _reason(judgement: Judgement, verdict=None) -> str:
    """The signed statements' comment: rule ids and version, no window numbers (they can grow long)."""
    verdict = verdict or judgement.contain
    key = version_key(judgement.model, judgement.version)
    return f"monitoring: {_rules(verdict)} on {key}'s {judgement.stream} decisions"[:500]


def _rules(verdict) -> str:
    return ", ".join(f.rule for f in verdict.findings)
