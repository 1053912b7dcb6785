"""Governance events: one frozen type per fact the audit ledger records, defined here and nowhere else.

Each event type declares its ledger action and where each of its fields goes in the entry:

- `subject(...)`: the entry's subject (every event has `model`; most have `version`);
- `digest(...)`: a SHA-256 the entry binds (evidence pack, statement, artifact, policy, ...);
- `fact(...)`: operational state that decisions depend on (who requested a version, which deployment a
  step belongs to, ...). Facts are part of the hashed entry and retention never removes them;
- `detail(...)`: context for people (reasons, comments, figures). Details form the entry's payload, which
  retention may expire (`Ledger.expire_payloads`); a reader gets `None` for them afterwards and
  `event.expired` says so.

Writers build an event and `Ledger.append` it; readers ask `Ledger.events(EventType, ...)` and get typed
events back. An event with a missing, undeclared or mistyped field is refused when it is built, naming
the event and the field, so nothing is written.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

from governance.errors import GovernanceError

if TYPE_CHECKING:  # the ledger imports this module
    from governance.ledger.records import LedgerEntry

SUBJECT, DIGEST, FACT, DETAIL, ENTRY = "subject", "digest", "fact", "detail", "entry"
_PART = "ledger_part"

E = TypeVar("E", bound="Event")


class EventError(GovernanceError):
    """An event was built with a missing, undeclared or mistyped field; nothing was written."""


def subject(**kwargs: Any) -> Any:
    return field(metadata={_PART: SUBJECT}, **kwargs)


def digest(**kwargs: Any) -> Any:
    return field(metadata={_PART: DIGEST}, **kwargs)


def fact(**kwargs: Any) -> Any:
    return field(metadata={_PART: FACT}, **kwargs)


def detail(**kwargs: Any) -> Any:
    return field(metadata={_PART: DETAIL}, **kwargs)


def _entry(**kwargs: Any) -> Any:
    return field(metadata={_PART: ENTRY}, compare=False, repr=False, **kwargs)


ALL_MODELS = "*"  # the subject of an event about every model (an API token, a ledger checkpoint)
_BY_ACTION: dict[str, type[Event]] = {}
_ENTRY_FIELDS = frozenset({"seq", "ts", "entry_hash", "expired"})  # set by the ledger, not by writers


@dataclass(frozen=True, kw_only=True)
class Event:
    """A governance fact. `seq`, `ts` and `entry_hash` are set when the event is read back from the ledger."""

    action: ClassVar[str]
    actor: str = field(metadata={_PART: "actor"})
    model: str = subject()
    seq: int = _entry(default=0)
    ts: str = _entry(default="")
    entry_hash: str = _entry(default="")
    expired: bool = _entry(default=False)

    def record(self) -> dict:
        """The ledger fields of this event: actor, action, subject, digests, facts and payload."""
        parts: dict[str, dict] = {SUBJECT: {}, DIGEST: {}, FACT: {}, DETAIL: {}}
        for f in dataclasses.fields(self):
            part = f.metadata.get(_PART)
            value = getattr(self, f.name)
            if part in parts and not (value is None and part in (SUBJECT, DIGEST)):
                parts[part][f.name] = _plain(value)
        return {
            "actor": self.actor,
            "action": self.action,
            "subject": parts[SUBJECT],
            "digests": parts[DIGEST],
            "facts": parts[FACT],
            "payload": parts[DETAIL],
        }

    @classmethod
    def from_entry(cls: type[E], entry: LedgerEntry, typed: bool = True) -> E:
        """The typed event a ledger entry records; fields an older entry lacks are None, and so are details once
        retention expired the payload. Keys the type no longer declares are ignored. A field of the wrong type
        (written by hand: the project's own writes are checked) is an EventError naming the entry, unless not
        `typed`: then the values are as stored, for a reader that judges malformed entries itself."""
        kind = _BY_ACTION.get(entry.action)
        if kind is None or not issubclass(kind, cls):
            raise EventError(f"ledger entry {entry.seq} records {entry.action!r}, not a {cls.__name__}")
        sources = {SUBJECT: entry.subject, DIGEST: entry.digests, FACT: entry.facts, DETAIL: entry.payload or {}}
        values: dict[str, Any] = {
            "actor": entry.actor,
            "seq": entry.seq,
            "ts": entry.ts,
            "entry_hash": entry.entry_hash,
            "expired": entry.payload is None,
        }
        for name, part, hint, plain, as_tuple in _layout(kind.action):
            value = sources[part].get(name)
            if as_tuple and isinstance(value, list):  # JSON has no tuples
                value = tuple(value)
            values[name] = value
            if not typed or value is None or (plain and type(value) is str):
                continue
            if not _fits(value, hint):  # written by hand, not by this project
                raise EventError(
                    f"ledger entry {entry.seq} ({entry.action}): field {name!r} must be {_describe(hint)}, "
                    f"got {type(value).__name__} {value!r:.80}"
                )
        return kind._unchecked(**values)

    @classmethod
    def _unchecked(cls: type[E], **values: Any) -> E:
        made = object.__new__(cls)
        for f in dataclasses.fields(cls):
            object.__setattr__(made, f.name, values.get(f.name, _default(f)))
        return made


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field, subject, digest, fact, detail))
def event(action: str) -> Callable[[type[E]], type[E]]:
    """Declare an event type for `action`: a frozen, keyword-only dataclass whose constructor refuses a
    missing, undeclared or mistyped field with an EventError naming the event and the field."""

    def declare(cls: type[E]) -> type[E]:
        if action in _BY_ACTION:
            raise EventError(f"ledger action {action!r} is declared twice ({_BY_ACTION[action].__name__})")
        cls.action = action
        made = dataclass(frozen=True, kw_only=True)(cls)
        _BY_ACTION[action] = made
        built = made.__init__

        def __init__(self: Event, **values: Any) -> None:
            _check(made, values)
            built(self, **values)

        made.__init__ = __init__  # type: ignore[method-assign]  # the checked constructor
        return made

    return declare


def event_type(action: str) -> type[Event] | None:
    return _BY_ACTION.get(action)


def actions(*kinds: type[Event]) -> tuple[str, ...]:
    """The ledger actions of these event types and of every declared type derived from them."""
    return tuple(a for a, kind in _BY_ACTION.items() if issubclass(kind, kinds))


def _declared(kind: type[Event]) -> Iterable[dataclasses.Field]:
    return (f for f in dataclasses.fields(kind) if f.metadata.get(_PART) in (SUBJECT, DIGEST, FACT, DETAIL))


def _check(kind: type[Event], values: dict[str, Any]) -> None:
    name = f"{kind.__name__} ({kind.action})"
    declared = {f.name: f for f in dataclasses.fields(kind) if f.metadata.get(_PART) != ENTRY}
    unknown = sorted(set(values) - set(declared) - _ENTRY_FIELDS)
    if unknown:
        raise EventError(f"event {name}: undeclared field(s) {unknown}; declared: {sorted(declared)}")
    hints = _hints_of(kind.action)
    for fname, f in declared.items():
        if fname not in values:
            if _default(f) is dataclasses.MISSING:
                raise EventError(f"event {name}: field {fname!r} is missing")
            continue
        if not _fits(values[fname], hints[fname]):
            raise EventError(
                f"event {name}: field {fname!r} must be {_describe(hints[fname])}, "
                f"got {type(values[fname]).__name__} {values[fname]!r:.80}"
            )


@functools.cache
def _hints_of(action: str) -> dict[str, Any]:
    """An event type's field types, resolved once (each action is declared by one type)."""
    return typing.get_type_hints(_BY_ACTION[action])


@functools.cache
def _layout(action: str) -> tuple[tuple[str, str, Any, bool, bool], ...]:
    """How an entry of `action` is read back: each declared field's name, entry part and type, whether a plain
    string fits it (the common case, checked without `_fits`) and whether it is a tuple (a list in JSON)."""
    hints = _hints_of(action)
    return tuple(
        (f.name, f.metadata[_PART], hints[f.name], _fits("", hints[f.name]), "tuple" in str(f.type))
        for f in _declared(_BY_ACTION[action])
    )


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if origin is tuple:
        (item, *_rest) = typing.get_args(hint) or (Any,)
        return isinstance(value, tuple) and all(_fits(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if origin is list or hint is list:
        return isinstance(value, list)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# --- data -------------------------------------------------------------------------------------------


@event("data.snapshot")
class DataSnapshotted(Event):
    data: str = digest()
    dvc_md5: str = fact()
    rows: int | None = detail(default=None)
    columns: int | None = detail(default=None)
    source: str | None = detail(default=None)


@dataclass(frozen=True, kw_only=True)
class DataChecked(Event):
    """A snapshot checked against the data contract: passed (`DataValidated`) or failed (`DataRejected`)."""

    validation: str = digest()
    data: str = digest()
    dvc_md5: str = fact()
    suite: str | None = detail(default=None)
    failed: int | None = detail(default=None)


@event("data.validated")
class DataValidated(DataChecked):
    pass


@event("data.rejected")
class DataRejected(DataChecked):
    pass


# --- training and evidence ------------------------------------------------------------------------


@event("model.registered")
class ModelRegistered(Event):
    version: str = subject()
    artifact: str = digest()
    validation: str = digest()
    dvc_md5: str = fact()
    mlflow_run_id: str = fact()
    registered_version: int = fact()
    code_version: str = fact()
    params: dict | None = detail(default=None)


@dataclass(frozen=True, kw_only=True)
class ReportPublished(Event):
    version: str = subject()
    report: str = digest()
    artifact: str = digest()


@event("report.performance")
class PerformanceReportPublished(ReportPublished):
    pass


@event("report.fairness")
class FairnessReportPublished(ReportPublished):
    pass


@event("report.explainability")
class ExplainabilityReportPublished(ReportPublished):
    pass


REPORT_EVENTS: dict[str, type[ReportPublished]] = {
    "performance": PerformanceReportPublished,
    "fairness": FairnessReportPublished,
    "explainability": ExplainabilityReportPublished,
}


@event("card.published")
class CardPublished(Event):
    version: str = subject()
    html: str = digest()
    markdown: str = digest()
    complete: bool = fact()
    missing_sections: tuple[str, ...] = fact(default=())
    waivers: tuple[str, ...] = fact(default=())  # statement digests of the waivers the card lists


@event("gate.decision")
class GateDecided(Event):
    """The release gate's decision; `decision` is the whole `GateDecision.to_dict()` for people."""

    version: str = subject()
    policy: str = digest()
    evidence: str = digest()
    allowed: bool = fact()
    risk_tier: str = fact()
    trained_by: tuple[str, ...] = fact(default=())
    requested_by: tuple[str, ...] = fact(default=())
    decision: dict | None = detail(default=None)


# --- approval ---------------------------------------------------------------------------------------


@event("candidate.requested")
class CandidateRequested(Event):
    """A person (or the system) signed a request for this candidate version and Cedar let them `train` the
    model. The actor is a cache: the requester is whoever signed `statement`, verified where it is used
    (`governance.release.requests`)."""

    version: str = subject()
    statement: str = digest()
    policy: str = digest()


@event("candidate.refused")
class CandidateRefused(Event):
    """A signed candidate request Cedar refused (the signer may not `train` the model): it names nobody."""

    version: str = subject()
    statement: str = digest()
    policy: str = digest()
    reason: str | None = detail(default=None)


@event("approval.requested")
class ApprovalRequested(Event):
    """A version waits for a human decision on exactly this sealed evidence pack. Where the pack lives
    follows from model, version and digest (`Settings.evidence_pack_dir`), so nothing here can expire it."""

    version: str = subject()
    evidence_pack: str = digest()
    artifact: str = digest()
    policy: str = digest()
    requested_by: tuple[str, ...] = fact(default=())


@dataclass(frozen=True, kw_only=True)
class ApprovalDecided(Event):
    """An approver's decision on a pack, ledgered only once Cedar allowed it."""

    version: str = subject()
    statement: str = digest()
    evidence_pack: str = digest()
    policy: str = digest()
    roles: tuple[str, ...] = fact(default=())
    comment: str | None = detail(default=None)


@event("approval.granted")
class ApprovalGranted(ApprovalDecided):
    pass


@event("approval.rejected")
class ApprovalRejected(ApprovalDecided):
    pass


@event("approval.refused")
class ApprovalDecisionRefused(Event):
    """An approve or reject statement that was authentic but not accepted (Cedar, pack, waiver, tier)."""

    version: str = subject()
    statement: str = digest()
    evidence_pack: str = digest()
    statement_action: str = fact()
    reason: str | None = detail(default=None)


@event("release.approved")
class ReleaseApproved(Event):
    version: str = subject()
    statement: str = digest()
    evidence_pack: str = digest()
    approver: str = fact()
    roles: tuple[str, ...] = fact(default=())


@event("release.refused")
class ReleaseRefused(Event):
    version: str = subject()
    reasons: tuple[str, ...] | None = detail(default=None)


# --- moving the champion ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MoveStep(Event):
    """One step of a deployment or rollback (`governance.release.deployment`)."""

    version: str = subject()
    artifact: str = digest()
    evidence_pack: str = digest()
    approval: str = digest()
    deployment_id: int = fact()
    previous_version: int | None = fact(default=None)
    trigger: str | None = fact(default=None)
    statement: str | None = digest(default=None)
    recovered: bool = fact(default=False)
    reason: str | None = detail(default=None)

    kind: ClassVar[str]
    step: ClassVar[str]


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field, subject, digest, fact, detail))
def _move(kind: str, step: str) -> Callable[[type[E]], type[E]]:
    def declare(cls: type[E]) -> type[E]:
        cls.kind, cls.step = kind, step  # type: ignore[attr-defined]
        return event(f"{kind}.{step}")(cls)

    return declare


@_move("deploy", "started")
class DeploymentStarted(MoveStep):
    pass


@_move("deploy", "completed")
class DeploymentCompleted(MoveStep):
    pass


@_move("deploy", "aborted")
class DeploymentAborted(MoveStep):
    pass


@_move("rollback", "started")
class RollbackStarted(MoveStep):
    pass


@_move("rollback", "completed")
class RollbackCompleted(MoveStep):
    pass


@_move("rollback", "aborted")
class RollbackAborted(MoveStep):
    pass


MOVE_COMPLETED: tuple[type[MoveStep], ...] = (DeploymentCompleted, RollbackCompleted)


def move_step(kind: str, step: str) -> type[MoveStep]:
    """The event type of step `step` ("started", "completed", "aborted") of a `kind` move ("deploy", "rollback")."""
    found = _BY_ACTION.get(f"{kind}.{step}")
    if found is None or not issubclass(found, MoveStep):
        raise EventError(f"no move step {kind}.{step}")
    return found


@event("deployment.refused")
class DeploymentRefused(Event):
    version: str | None = subject(default=None)
    statement: str | None = digest(default=None)
    reason: str | None = detail(default=None)


# --- kill switch, waivers, statements -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KillSwitchFlipped(Event):
    statement: str = digest()
    policy: str = digest()
    reason: str | None = detail(default=None)

    disabled: ClassVar[bool]


@event("kill_switch.on")
class KillSwitchOn(KillSwitchFlipped):
    disabled = True


@event("kill_switch.off")
class KillSwitchOff(KillSwitchFlipped):
    disabled = False


@event("api_token.issued")
class ApiTokenIssued(Event):
    """A bearer token of the scoring API was created. `secret` is the SHA-256 of its secret (the secret is
    never recorded): a token's row counts only if this entry binds the same digest."""

    token_id: str = fact()
    name: str = fact()
    secret: str = digest()


@event("api_token.revoked")
class ApiTokenRevoked(Event):
    token_id: str = fact()


@event("api_token.refused")
class ApiTokenRefused(Event):
    """A token's row disagrees with the ledger (issued without an `api_token.issued` entry, its digest
    replaced, or revoked in the ledger but not in its row): the token is refused. `incident` names the
    disagreement, so it is ledgered once."""

    token_id: str = fact()
    incident: str = digest()
    problem: str = fact()


@event("kill_switch.refused")
class KillSwitchRefused(Event):
    statement: str = digest()
    policy: str = digest()
    statement_action: str = fact()
    reason: str | None = detail(default=None)


@dataclass(frozen=True, kw_only=True)
class WaiverDecided(Event):
    version: str = subject()
    rule: str = subject()
    until: str = subject()
    statement: str = digest()
    policy: str = digest()
    allowed: bool = fact()
    rules: tuple[str, ...] = detail(default=())
    reasons: tuple[str, ...] = detail(default=())


@event("waiver.granted")
class WaiverGranted(WaiverDecided):
    pass


@event("waiver.refused")
class WaiverRefused(WaiverDecided):
    pass


@dataclass(frozen=True, kw_only=True)
class StatementEvent(Event):
    """A signed statement the store accepted or refused; the subject is the statement's own subject."""

    version: str | None = subject(default=None)
    evidence_digest: str | None = subject(default=None)
    rule: str | None = subject(default=None)
    until: str | None = subject(default=None)
    statement: str = digest()
    roster: str = digest()
    statement_action: str = fact()


@event("statement.recorded")
class StatementRecorded(StatementEvent):
    roster_version: str | int | None = detail(default=None)


@event("statement.refused")
class StatementRefused(StatementEvent):
    reason: str | None = detail(default=None)


# --- monitoring and remediation ------------------------------------------------------------------------


@event("monitoring.reference")
class MonitoringReferenceBuilt(Event):
    version: str = subject()
    reference: str = digest()
    artifact: str = digest()
    data_md5: str | None = detail(default=None)
    rows: int | None = detail(default=None)
    rebuilt_unverified_file: bool | None = detail(default=None)


@dataclass(frozen=True, kw_only=True)
class WindowJudged(Event):
    """A monitoring report on one window: it alerts (`MonitoringAlert`) or no longer does (`MonitoringReported`).
    `path` is the report's place under the state dir (relative), `run_id` the Dagster run that wrote it."""

    version: str = subject()
    report: str = digest()
    evidently_html: str | None = digest(default=None)
    window: str = fact()
    stream: str = fact()
    run_id: str = fact()
    path: str = fact()
    alerted_by: str | None = detail(default=None)
    summary: str | None = detail(default=None)
    policy_digest: str | None = detail(default=None)


@event("monitoring.alert")
class MonitoringAlert(WindowJudged):
    pass


@event("monitoring.report")
class MonitoringReported(WindowJudged):
    pass


@event("monitoring.remediation")
class RemediationDecided(Event):
    version: str = subject()
    policy: str = digest()
    window: str = fact()
    stream: str = fact()
    actions: tuple[str, ...] = fact(default=())
    contained: bool | None = fact(default=None)
    rollback_target: dict | None = fact(default=None)  # {"version", "passes", "summary"} when one was looked at
    notes: tuple[str, ...] | None = detail(default=None)
    judgement: dict | None = detail(default=None)


@event("monitoring.guard_contained")
class GuardContained(Event):
    """The fairness guard found harm conclusive while a window filled, and what was done: the kill switch
    (`statement`: the system's signed statement), or why nothing was. `window` is the decisions it judged."""

    version: str = subject()
    policy: str = digest()
    card: str = digest()  # the sealed fairness report the guard was armed with
    statement: str | None = digest(default=None)
    window: str = fact()
    decisions: int = fact()
    actions: tuple[str, ...] = fact(default=())
    contained: bool = fact()
    evidence: dict | None = detail(default=None)
    rules: tuple[str, ...] | None = detail(default=None)
    notes: tuple[str, ...] | None = detail(default=None)


@event("monitoring.guard_not_armed")
class GuardNotArmed(Event):
    """The fairness guard cannot judge a version's decisions as they are logged (its approved card's figures or
    the policy's bounds are missing or unusable); windows are still judged when complete."""

    version: str = subject()
    problem: str = digest()  # SHA-256 of the reason, so one reason is ledgered once
    reason: str = fact()


@dataclass(frozen=True, kw_only=True)
class RetrainingDecided(Event):
    version: str | None = subject(default=None)
    policy: str = digest()
    statement: str = digest()
    trigger: str = fact()
    deployment_id: int | None = fact(default=None)
    reason: str | None = detail(default=None)
    window: str | None = detail(default=None)
    stream: str | None = detail(default=None)
    rules: tuple[str, ...] | None = detail(default=None)
    scheduled_for: str | None = detail(default=None)


@event("retraining.requested")
class RetrainingRequested(RetrainingDecided):
    pass


@event("retraining.refused")
class RetrainingRefused(RetrainingDecided):
    refused_because: tuple[str, ...] | None = detail(default=None)


@dataclass(frozen=True, kw_only=True)
class RequestAbandoned(Event):
    """Automation gave up on a request it answers with Dagster runs: each of `runs` (the Dagster run ids launched
    for it, retries included) ended without answering it (never started, lost its worker, canceled). `request` is
    the ledger entry of the request, `request_entry` its entry hash. Nothing more is launched for it."""

    request: int = fact()
    request_entry: str = digest()
    runs: tuple[str, ...] = fact()
    reason: str | None = detail(default=None)


@event("retraining.abandoned")
class RetrainingAbandoned(RequestAbandoned):
    """Given up on a `RetrainingRequested`: no new candidate comes of it."""


@event("release.abandoned")
class ReleaseAbandoned(RequestAbandoned):
    """Given up on releasing an `ApprovalGranted`: the approval stands, but no release run comes of it."""

    version: str = subject()
    approval: str = digest()  # the granted approve statement


@event("production.incident")
class ProductionIncident(Event):
    """The verified record and production disagree: a move or kill-switch flip without a verifiable signed
    statement, or a cache (alias, row) that says otherwise. `incident` is the digest naming it, so it is
    ledgered once."""

    incident: str = digest()
    description: str = fact()


@event("labels.imported")
class LabelsImported(Event):
    file: str = digest()
    labelled: int = fact()
    file_rows: int | None = detail(default=None)
    labelled_at: str | None = detail(default=None)


@event("decisions.sealed")
class DecisionsSealed(Event):
    """A contiguous range of the model's decision log sealed (`governance.lineage.decision_seals`): every decision of
    the model with `first_seq` <= seq <= `last_seq`, `count` of them, as `leaves` ([seq, decision id, digest of
    what an auditor relies on], in seq order) under `root`, their Merkle root. A model's seals abut, from seq 1,
    so every decision up to the last `last_seq` is in exactly one. `last_ts` is the latest decision's time:
    retention deletes a sealed range whole, once it is past `decision_log_days`. `sealed_before` is the time the
    sealer sealed up to: a seal of fewer than the most decisions a seal holds left none logged before it (older
    seals: None)."""

    root: str = digest()
    first_seq: int = fact()
    last_seq: int = fact()
    count: int = fact()
    last_ts: str = fact()
    leaves: tuple[list, ...] = fact()
    sealed_before: str | None = fact(default=None)


@event("ledger.checkpointed")
class LedgerCheckpointed(Event):
    """A signed checkpoint of the ledger's first `size` entries (Merkle `root`) was taken by `actor`
    (`govern ledger checkpoint`). The checkpoint is kept outside the database, where only it can show a deleted
    tail; this entry lets `govern status` say when the newest was taken. `model` is `ALL_MODELS`."""

    size: int = fact()
    root: str = digest()


@event("retention.applied")
class RetentionApplied(Event):
    """Retention ran. `ledger_payloads_before` is the cut-off it applied to ledger payloads, kept so that
    `govern ledger verify` can tell an expiry retention made from a payload removed by hand."""

    ledger_payloads_before: str = fact()
    decisions_before: str | None = fact(default=None)  # sealed ranges wholly before it were deleted (older runs: None)
    decision_inputs_before: str | None = fact(default=None)  # inputs of decisions before it were dropped (older: None)
    cutoffs: dict | None = detail(default=None)
    decision_inputs_expired: int | None = detail(default=None)
    decisions_deleted: int | None = detail(default=None)
    ledger_payloads_expired_all_models: int | None = detail(default=None)
