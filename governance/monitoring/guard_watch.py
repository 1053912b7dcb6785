"""The guard's watch: beside the scoring API, every governed model's decisions judged as they are logged.

`govern guard` runs it: one process tailing the decision log (so it sees the
decisions of every serving worker and replica), polling every
`poll_seconds`. Per model it arms a `FairnessGuard` for the version deciding
(from its sealed fairness report; a version it cannot arm for is ledgered once
as `events.GuardNotArmed` and its windows are left to the sensors), feeds
it each new decision and asks the monitoring policy about the strongest
finding. When the policy calls for containment it acts as remediation does,
under the model's remediation lease: the kill switch, signed by the system
principal, authorised by Cedar, ledgered, then `events.GuardContained`
with the guard's evidence. Serving reads the kill switch per batch, so the
next batch is in the safe state. The window report follows for the record
(`sensors/guard.py` requests it for the decisions the guard judged).

Every `SEAL_EVERY_SECONDS` it also seals the decisions logged since the last
seal into the ledger (`governance.lineage.decision_seals`), off the scoring path.

The API process never holds the system key: this process reads it at each
action from `GOVERN_SYSTEM_KEY` (or the state dir's keys), as the Dagster code
server does for remediation; it is never logged.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import bindparam, select

from governance import events
from governance.config import GovernedModel, load_config
from governance.decisions import DecisionLog, decisions
from governance.digests import sha256_hex
from governance.errors import GovernanceError
from governance.lineage.decision_seals import seal_decisions
from governance.metrics.fairness import protected_groups
from governance.monitoring.guard import Armed, FairnessGuard, Finding, GuardNotArmed, Observation, arm
from governance.monitoring.lease import remediation_lease
from governance.monitoring.monitor import Monitor
from governance.monitoring.policy import DISABLE, guard_containment
from governance.monitoring.reference import sealed_report
from governance.registry import version_key
from governance.release.kill_switch import set_kill_switch
from governance.release.production import verified_production
from governance.release.services import SYSTEM, Services
from governance.serving.decide import APPROVE
from governance.settings import Settings

log = logging.getLogger(__name__)

ACTOR = "system:guard"
SWITCHED_OFF = "kill_switch"
FAIRNESS_REPORT = "fairness.json"
MAX_READ = 5000  # decisions read per model and poll
MAX_REMEMBERED_GROUPS = 10_000  # distinct logged protected values remembered per model
SEAL_EVERY_SECONDS = 60  # how often the watch seals the settled decisions of every model into the ledger
LEASE_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class GuardContained:
    """What the guard did about a conclusive finding (ledgered as `events.GuardContained`)."""

    ledger_seq: int
    actions: tuple[str, ...]
    notes: tuple[str, ...]
    finding: Finding


@dataclass
class _Watched:
    model: GovernedModel
    after_seq: int
    groups: _Groups
    guard: FairnessGuard | None = None
    not_armed: dict[int, str] = field(default_factory=dict)  # version -> why (ledgered once per process)


class GuardWatch:
    """The fairness guards of every governed model in the settings' config."""

    def __init__(self, settings: Settings, from_start: bool = False) -> None:
        self.monitor = Monitor(settings)
        self.services = self.monitor.services
        config = load_config(settings.config_path)
        self.log = DecisionLog.for_settings(settings)
        self.watched = {
            name: _Watched(model, 0 if from_start else self.log.last_seq(name), _Groups(model))
            for name, model in config.models.items()
        }
        self.holder = f"guard:{os.getpid()}"

    def poll(self) -> list[GuardContained]:
        """Judge every model's new decisions; what was ledgered about containment."""
        done = []
        for watched in self.watched.values():
            if not watched.model.monitoring.collect_protected_attributes:
                continue
            contained = self._poll_model(watched)
            if contained is not None:
                done.append(contained)
        return done

    def run(self, stop: threading.Event, poll_seconds: float) -> None:
        sealed_at = 0.0
        while not stop.wait(poll_seconds):
            try:
                for contained in self.poll():
                    log.warning("guard: %s (ledger entry %d)", " ".join(contained.notes), contained.ledger_seq)
                if time.monotonic() - sealed_at >= SEAL_EVERY_SECONDS:
                    seal_decisions(self.services, self.log)
                    sealed_at = time.monotonic()
            except Exception:  # never stop watching; the next poll tries again
                log.exception("guard: a poll failed")

    def _poll_model(self, watched: _Watched) -> GuardContained | None:
        observed = _read(self.log, watched.model, watched.after_seq, watched.groups)
        if not observed:
            return None
        watched.after_seq = observed[-1].seq
        finding = None
        for version, run in _by_version(observed):
            guard = self._guard_for(watched, version)
            finding = guard.observe(run) if guard else None
        if finding is None or finding.evidence < 1.0:
            return None
        return self._judge(watched, finding)

    def _guard_for(self, watched: _Watched, version: int | None) -> FairnessGuard | None:
        if version is None:  # the safe state: the live tests end
            if watched.guard is not None:
                watched.guard.reset()
            return None
        if watched.guard is not None and watched.guard.armed.version == version:
            return watched.guard
        watched.guard = None
        if version in watched.not_armed:
            return None
        try:
            watched.guard = FairnessGuard(self._arm(watched.model, version))
        except GovernanceError as exc:
            self._not_armed(watched, version, str(exc))
        return watched.guard

    def _arm(self, model: GovernedModel, version: int) -> Armed:
        report, where, sha = sealed_report(self.services, model, version, FAIRNESS_REPORT)
        if report is None:
            raise GuardNotArmed(f"{version_key(model.name, version)}: {where}")
        return arm(self.monitor.policies(), model, version, report, sha, where)

    def _not_armed(self, watched: _Watched, version: int, reason: str) -> None:
        watched.not_armed[version] = reason
        key = version_key(watched.model.name, version)
        log.error("guard not armed for %s (its windows are judged when complete): %s", key, reason)
        problem = sha256_hex(reason.encode())
        recorded = self.services.ledger.events(events.GuardNotArmed, model=watched.model.name, version=key)
        if not any(e.problem == problem for e in recorded):
            self.services.ledger.append(
                events.GuardNotArmed(actor=ACTOR, model=watched.model.name, version=key, problem=problem, reason=reason)
            )

    def _judge(self, watched: _Watched, finding: Finding) -> GuardContained | None:
        model = watched.model
        contain, permitted = guard_containment(
            self.monitor.policies(), model.name, finding.version, model.risk_tier, finding.decisions, finding.evidence
        )
        if not contain.allowed:
            return None
        with remediation_lease(self.services.settings.ledger_url, model.name, self.holder, LEASE_WAIT_SECONDS):
            contained = self._contain(model, finding, list(contain.findings), permitted)
        if watched.guard is not None:
            watched.guard.reset()  # judged: the next decisions start afresh
        return contained

    def _contain(self, model: GovernedModel, finding: Finding, fired: list, permitted) -> GuardContained:
        services, notes, actions, statement = self.services, [finding.summary()], [], None
        rules = [f.rule for f in fired]
        disable = next((v for v in permitted if v.action == DISABLE), None)
        held_on = _held_on(services, model.name)
        if held_on:
            notes.append("the kill switch is already on (the signed record says so): serving is in the safe state")
        elif disable is None:
            notes.append("CONTAINMENT FAILED: the policy permits no kill switch for the guard's finding")
        else:
            fired += disable.findings
            rules += [f.rule for f in disable.findings]
            reason = f"fairness guard: {'; '.join(f.describe() for f in fired)}: {finding.summary()}"
            try:
                flipped = set_kill_switch(services, model.name, True, SYSTEM, services.system_key(), reason)
            except (GovernanceError, OSError) as refused:
                notes.append(f"CONTAINMENT FAILED: the kill switch was refused: {refused}")
            else:
                actions.append(SWITCHED_OFF)
                statement = flipped.statement_digest
                notes.append("kill switch on; a person re-enables with `govern enable`")
        entry = services.ledger.append(
            events.GuardContained(
                actor=ACTOR,
                model=model.name,
                version=version_key(model.name, finding.version),
                policy=self.monitor.policies().digest,
                card=finding.card,
                statement=statement,
                window=finding.window,
                decisions=finding.decisions,
                actions=tuple(actions),
                contained=bool(actions) or held_on,
                evidence=finding.to_dict(),
                rules=tuple(rules),
                notes=tuple(notes),
            )
        )
        return GuardContained(entry.seq, tuple(actions), tuple(notes), finding)


_NEW_DECISIONS = (
    select(
        decisions.c.seq, decisions.c.version, decisions.c.score.is_not(None), decisions.c.outcome, decisions.c.protected
    )
    .where(decisions.c.model == bindparam("model"), decisions.c.seq > bindparam("after_seq"))
    .order_by(decisions.c.seq)
    .limit(MAX_READ)
)


def _read(log: DecisionLog, model: GovernedModel, after_seq: int, groups: _Groups) -> list[Observation]:
    """The model's decisions after `after_seq`, oldest first, with their groups as the card forms them. The
    query is built once, its rows fetched at once and unpacked as tuples (the gain: `FairnessGuard.observe`)."""
    with log.engine.connect() as conn:
        rows = conn.execute(_NEW_DECISIONS, {"model": model.name, "after_seq": after_seq}).all()
    return [
        Observation(seq, version if scored else None, outcome == APPROVE, groups.of(protected))
        for seq, version, scored, outcome, protected in rows
    ]


class _Groups:
    """A decision's group under each protected attribute, as `protected_groups` labels them for the card (bands
    cut, intersections joined), remembered per distinct logged value: a population has a few hundred, so a
    poll costs a lookup per decision, not a DataFrame (guard CPU per decision at 100 decisions a poll 0.105 ->
    0.03 ms, bench in the commit that made it)."""

    def __init__(self, model: GovernedModel) -> None:
        self.model = model
        self._known: dict[str | None, dict[str, str | None]] = {}

    def of(self, protected: str | None) -> dict[str, str | None]:
        """{} when the decision lacks a protected attribute: it joins no group."""
        if protected not in self._known:
            if len(self._known) >= MAX_REMEMBERED_GROUPS:
                self._known.clear()
            self._known[protected] = self._label(protected)
        return self._known[protected]

    def _label(self, protected: str | None) -> dict[str, str | None]:
        row = pd.DataFrame([json.loads(protected) if protected else {}], columns=self.model.protected_columns)
        if row.isna().any(axis=None):
            return {}
        return {name: str(labels.iloc[0]) for name, labels in protected_groups(self.model, row).items()}


def _by_version(observed: list[Observation]) -> list[tuple[int | None, list[Observation]]]:
    """Consecutive runs of decisions by the same version (None: the safe state)."""
    runs: list[tuple[int | None, list[Observation]]] = []
    for seen in observed:
        if runs and runs[-1][0] == seen.version:
            runs[-1][1].append(seen)
        else:
            runs.append((seen.version, [seen]))
    return runs


def _held_on(services: Services, model: str) -> bool:
    """Whether the signed record holds the kill switch on (its row is a cache); a record that cannot be read
    holds it on too, as serving does."""
    try:
        return verified_production(services, model).kill_switch
    except GovernanceError:
        return True
