"""Acting on a window's judgement as the policy says: contain the harm, request retraining.

Runs under the model's remediation lease and acts only on a judgement of the
current champion: a window judged on a version that is no longer the champion
(an earlier alert already rolled it back), harm while the kill switch is
already on, or harm in a window completed before a person re-enabled the model
(their decision stands), changes nothing. At most one retraining request per
champion deployment.

Containment: the rollback target is the version deployed before the champion,
unless monitoring itself contained that version and no person has put it back
since. It passes when the
policy, judging the same window re-scored by it against its own reference,
calls for no containment. The policy then permits `auto_rollback` or
`auto_disable` (policies/monitoring.cedar); a refused rollback is asked again
as if the target did not pass. The rollback and the kill switch are the core's
own actions: signed by the system principal, authorised by Cedar, ledgered.
The decision itself, with the rules that made it, is the ledger entry
`monitoring.remediation`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from governance import events
from governance.config import GovernedModel
from governance.control import Deployment
from governance.errors import GovernanceError
from governance.monitoring.lease import remediation_lease
from governance.monitoring.monitor import Monitor
from governance.monitoring.policy import DISABLE, ROLLBACK, Judgement, containment, rejudge
from governance.monitoring.retraining import MONITORING, RetrainingRefused, monitoring_requests, request_retraining
from governance.monitoring.windows import completed_at, read_window
from governance.registry import parse_version_key, version_key
from governance.release.deployment import previous_version, reconcile, rollback
from governance.release.kill_switch import set_kill_switch
from governance.release.services import SYSTEM

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
    champion = services.registry.champion(model.name)
    move = _current_move(services.control.deployments(model.name, "completed"), champion)
    actions: list[str] = []
    notes: list[str] = []
    target, contained = None, True
    if judgement.version != champion or move is None:
        notes.append(f"the window was judged on v{judgement.version} but the champion is now "
                     f"{'v' + str(champion) if champion else 'unset'}: nothing to do")
    else:
        if judgement.contain.allowed:
            contained, target = _contain(monitor, model, judgement, actions, notes)
        if judgement.retrain.allowed:
            _retrain(monitor, model, judgement, move, actions, notes)
    if not judgement.alert:
        notes.append("under the policy in force the window calls for nothing")
    entry = services.ledger.append(events.RemediationDecided(
        actor=ACTOR, model=model.name, version=version_key(model.name, judgement.version),
        policy=judgement.policy_digest, window=judgement.window, stream=judgement.stream, actions=tuple(actions),
        contained=contained, rollback_target=target, notes=tuple(notes), judgement=judgement.to_dict()))
    return Remediation(model.name, judgement.version, judgement.window, judgement.stream, tuple(actions),
                       tuple(notes), contained, target, entry.seq)


def _current_move(moves: list[Deployment], champion: int | None) -> Deployment | None:
    return moves[-1] if moves and moves[-1].version == champion else None


def _contain(monitor: Monitor, model: GovernedModel, judgement: Judgement, actions: list,
             notes: list) -> tuple[bool, dict | None]:
    services = monitor.services
    switch = services.control.kill_switch(model.name)
    if switch.disabled:
        notes.append("the kill switch is already on: serving is in the safe state")
        return True, None
    complete = completed_at(monitor.log, model.name, judgement.window)
    if switch.changed_by and switch.changed_by != SYSTEM and switch.changed_at > complete:
        notes.append(f"{switch.changed_by} re-enabled the model at {switch.changed_at}, after this window was "
                     f"complete ({complete}): a person's decision on it is not overridden")
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


def _switch_off(monitor: Monitor, model: GovernedModel, judgement: Judgement, reason: str, actions: list,
                notes: list, verdict=None) -> bool:
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


def _rollback_target(monitor: Monitor, model: GovernedModel,
                     judgement: Judgement) -> tuple[int | None, bool, dict | None]:
    """The previous approved version, whether it passes on this window, and what was found."""
    services = monitor.services
    target = previous_version(services, model.name)
    if target is None:
        return None, False, None
    if target in _contained_by_monitoring(monitor, model):
        return target, False, {"version": target, "passes": False,
                               "summary": f"v{target} was contained by monitoring and no person has put it back since: "
                                          "not restored automatically"}
    window = read_window(monitor.log, model.name, judgement.first_seq, judgement.last_seq)
    concerns = tuple(m.concern for m in judgement.measurements)
    try:
        rescored, _ = monitor.judge(model, window, judgement.stream, concerns, as_version=target)
    except GovernanceError as exc:
        return target, False, {"version": target, "passes": False, "summary": f"v{target} cannot be judged: {exc}"}
    passes = not rescored.contain.allowed
    return target, passes, {"version": target, "passes": passes, "summary": rescored.summary()}


def _contained_by_monitoring(monitor: Monitor, model: GovernedModel) -> set[int]:
    """Versions monitoring rolled back from or switched off that no person has put back since (by deploying or
    rolling back to them, or by re-enabling while they were champion): never restored automatically."""
    contained, champion = set(), None
    history: list[events.Event] = monitor.services.ledger.events((*events.MOVE_COMPLETED, events.KillSwitchOff, events.RemediationDecided),
                                             model=model.name, checked=False)  # containment must not stall
    for event in history:
        if isinstance(event, events.MoveStep):
            champion = parse_version_key(event.version)[1]
            if event.actor != SYSTEM:
                contained.discard(champion)
        elif isinstance(event, events.KillSwitchOff) and event.actor != SYSTEM:
            contained.discard(champion)
        elif isinstance(event, events.RemediationDecided) and {ROLLED_BACK, SWITCHED_OFF} & set(event.actions):
            contained.add(parse_version_key(event.version)[1])
    return contained


def _retrain(monitor: Monitor, model: GovernedModel, judgement: Judgement, move: Deployment, actions: list,
             notes: list) -> None:
    services = monitor.services
    earlier = [e for e in monitoring_requests(services, model.name, checked=False) if e.deployment_id == move.id]
    if earlier:
        notes.append(f"retraining was already requested for this deployment (ledger entry {earlier[0].seq})")
        return
    details = {"deployment_id": move.id, "window": judgement.window, "stream": judgement.stream,
               "rules": tuple(f.rule for f in judgement.retrain.findings)}
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
