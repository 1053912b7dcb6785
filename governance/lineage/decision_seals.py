"""The decision log sealed into the ledger: a decision row is a cache, its seal the record.

Sealing (`seal_decisions`): per model, the decisions logged since its last seal, in seq order up to the first
one logged less than `SETTLE` ago (a writer commits its decision well within that, so no lower seq is still
to come; a decision dated further ahead than `MAX_CLOCK_SKEW` does not hold sealing back: it is sealed as it
stands, and verification names it), in ranges of at most `MAX_SEAL` decisions, each ledgered as `events.DecisionsSealed` with every
decision's digest (`decision_digest`). The digest covers what an auditor relies on and retention keeps: id,
time, model, version, input digest, score, outcome, reasons, how many were withheld, the kill switch and why a
safe-state answer was given; not the inputs (retention expires them; while they are kept they must still have
the input digest) nor the label (it arrives later). The guard seals as it watches (`govern guard`), retention
seals before it deletes, `govern decisions seal` on demand.

Verification (`verify_decision_log`) holds each seal against the rows of its range and names each sealed
decision whose row is gone (unless a credible retention run deleted its whole range: no row of the range is
left), each row in a sealed range the seal does not hold, each row that no longer has its sealed digest, each
sealed decision dated in the future, each seal that cannot be read (then left out), and each seal that does not
abut the previous one or whose leaves do not make its root. Decisions after the last seal are counted as not
yet sealed, never as verified; any logged over `STALE` ago is a finding (sealing has stalled).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import takewhile

from governance.decisions import Decision, DecisionLog
from governance.digests import canonical_json, digest_of
from governance.events import DecisionsSealed, RetentionApplied
from governance.ledger.merkle import leaf_hash, mth
from governance.ledger.retention import incredible_retention
from governance.monitoring.lease import remediation_lease
from governance.release.production import record_incidents
from governance.release.services import Services
from governance.timestamps import MAX_CLOCK_SKEW, TIMESTAMP_PATTERN, parse_utc, utc_now, utc_timestamp

ACTOR = "system:decision_seals"
MAX_SEAL = 500  # decisions per ledger entry (about 60 kB of leaves)
SETTLE = timedelta(seconds=60)  # a decision logged longer ago than this is committed (or never will be)
STALE = timedelta(
    hours=1
)  # a decision unsealed for longer than this: sealing has stalled (the guard seals each minute)
_LEASE = "decision-log:seal"  # no model has this name: sealers take turns in the monitoring lease table
SEALED_FIELDS = (
    "seq",
    "decision_id",
    "ts",
    "model",
    "version",
    "input_digest",
    "score",
    "outcome",
    "reasons",
    "reasons_withheld",
    "kill_switch",
    "safe_state_reason",
)


def decision_digest(decision: Decision) -> str:
    """SHA-256 of the canonical JSON of the decision's sealed fields."""
    return digest_of({name: getattr(decision, name) for name in SEALED_FIELDS})


def seal_root(leaves: tuple[list, ...]) -> str:
    """Merkle root (RFC 6962) of the leaves' decision digests, in seq order."""
    return mth([leaf_hash(bytes.fromhex(digest)) for _seq, _id, digest in leaves]).hex()


# --- sealing ---------------------------------------------------------------------------------------


def seal_decisions(services: Services, log: DecisionLog, before: str | None = None) -> list[DecisionsSealed]:
    """Seal every model's decisions logged before `before` (default: `SETTLE` ago); the seals ledgered."""
    before = before or utc_timestamp(utc_now() - SETTLE)
    sealed = []
    for model in log.models():
        while (made := _seal_next(services, log, model, before)) is not None:
            sealed.append(made)
    return sealed


def _seal_next(services: Services, log: DecisionLog, model: str, before: str) -> DecisionsSealed | None:
    """Ledger the next range of `model`'s decisions, up to the first one logged at or after `before`, if any."""
    with remediation_lease(services.settings.ledger_url, _LEASE, f"{ACTOR}:{os.getpid()}"):
        last = services.ledger.latest(DecisionsSealed, model=model, typed=False)
        if last is not None and unreadable(last):  # a forged seal: seal on from the last one that can be read
            last = next(
                (
                    s
                    for s in reversed(services.ledger.events(DecisionsSealed, model=model, typed=False))
                    if not unreadable(s)
                ),
                None,
            )
        after = last.last_seq if last else 0
        future = _future()
        rows = list(takewhile(lambda d: d.ts < before or d.ts > future, log.window(model, after, MAX_SEAL)))
        if not rows:
            return None
        leaves = tuple([d.seq, d.decision_id, decision_digest(d)] for d in rows)
        seal = DecisionsSealed(
            actor=ACTOR,
            model=model,
            root=seal_root(leaves),
            first_seq=after + 1,
            last_seq=rows[-1].seq,
            count=len(rows),
            last_ts=max(d.ts for d in rows),
            leaves=leaves,
            sealed_before=before,
        )
        return DecisionsSealed.from_entry(services.ledger.append(seal))


# --- verification ----------------------------------------------------------------------------------


@dataclass
class ModelCheck:
    """One model's decision log against its seals."""

    model: str
    seals: int = 0
    verified: int = 0  # decisions whose row matches its seal
    expired: int = 0  # sealed decisions a credible retention run deleted
    unsealed: int = 0  # decisions after the last seal: not yet sealed, so not verified
    findings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DecisionLogReport:
    models: tuple[ModelCheck, ...]

    @property
    def ok(self) -> bool:
        return not any(m.findings for m in self.models)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "models": [m.__dict__ for m in self.models]}


def verify_decision_log(services: Services, log: DecisionLog, models: list[str] | None = None) -> DecisionLogReport:
    """Each model's decision log (default: every model in the log or in a seal) against its seals; each
    disagreement is ledgered as an incident, once."""
    seals: dict[str, list[DecisionsSealed]] = {}
    for seal in services.ledger.events(DecisionsSealed, typed=False):
        seals.setdefault(seal.model, []).append(seal)
    names = models or sorted(set(log.models()) | set(seals))
    checks = tuple(_check_model(services, log, model, seals.get(model, [])) for model in names)
    for check in checks:
        record_incidents(services, check.model, check.findings, ACTOR)
    return DecisionLogReport(checks)


def _check_model(services: Services, log: DecisionLog, model: str, seals: list[DecisionsSealed]) -> ModelCheck:
    check = ModelCheck(model)
    runs = services.ledger.events(RetentionApplied, model=model)
    inputs_dropped_before = _inputs_dropped_before(runs)
    after, latest = 0, ""
    for seal in seals:
        check.seals += 1
        if problem := unreadable(seal):
            check.findings.append(problem)
            continue
        problem = seal_problem(seal, after)
        after = max(after, seal.last_seq)
        if problem:
            check.findings.append(problem)
            continue
        rows = log.between(model, seal.first_seq, seal.last_seq)
        _check_range(check, seal, rows, not rows and _retention_deleted(seal, runs), inputs_dropped_before)
        early, latest = dated_by_hand(rows, latest)
        check.findings += [_redated(row, seal) for row in early]
        latest = sealed_after(seal, latest)
    check.unsealed = log.count(model, after_seq=after)
    if log.count(model, after_seq=after, before=utc_timestamp(utc_now() - STALE)):
        check.findings.append(
            f"decisions after seq {after} (the last sealed) were logged over {STALE.total_seconds() // 60:.0f} "
            "minutes ago and are not sealed: sealing has stalled"
        )
    return check


def unreadable(seal: DecisionsSealed) -> str | None:
    """Why a seal cannot be read (its range is not integers, its leaves not [seq, decision id, hex digest]), or
    None."""
    integers = all(type(n) is int for n in (seal.first_seq, seal.last_seq, seal.count))
    leaves = isinstance(seal.leaves, list | tuple) and all(
        isinstance(leaf, list)
        and len(leaf) == 3
        and type(leaf[0]) is int
        and isinstance(leaf[1], str)
        and isinstance(leaf[2], str)
        and re.fullmatch(r"[0-9a-f]{64}", leaf[2]) is not None
        for leaf in seal.leaves
    )
    if integers and leaves and isinstance(seal.last_ts, str) and isinstance(seal.root, str):
        return None
    return f"the seal in ledger entry {seal.seq} cannot be read: its range or leaves are malformed (forged)"


def _future() -> str:
    """Decisions dated after this are in the future, beyond any writer's clock skew."""
    return utc_timestamp(utc_now() + MAX_CLOCK_SKEW)


def seal_problem(seal: DecisionsSealed, after: int) -> str | None:
    """Why a seal cannot be checked (it does not abut the previous seal, ending at `after`; its leaves are not its
    range's decisions in seq order; they do not make its root), or None."""
    where = f"the seal in ledger entry {seal.seq} over seq {seal.first_seq}..{seal.last_seq}"
    if seal.first_seq > after + 1:
        return f"{where} leaves a gap: seq {after + 1}..{seal.first_seq - 1} are in no seal"
    if seal.first_seq <= after:
        return f"{where} overlaps the previous seal, which ends at seq {after}"
    if not _leaves_in_order(seal):
        return f"{where}: its leaves are not {seal.count} decisions of the range in seq order"
    if seal_root(seal.leaves) != seal.root:
        return f"{where}: its leaves do not make its root {seal.root}"
    return None


def dated_by_hand(rows: list[Decision], latest: str) -> tuple[list[Decision], str]:
    """The rows (in seq order) dated more than the clock skew before `latest`, the latest date a decision logged
    before them has (or `sealed_after`'s floor); and the latest date through the rows. The scoring API dates a
    decision as it logs it and the log numbers decisions as it writes them, so such a date was set by hand (back
    past retention's cut-off, say)."""
    early, future = [], _future()  # a decision dated in the future is named as such, and raises no floor
    for row in rows:
        if not TIMESTAMP_PATTERN.match(row.ts):
            early.append(row)
        elif row.ts > future:
            continue
        elif row.ts > latest:
            latest = row.ts
        elif parse_utc(row.ts) + MAX_CLOCK_SKEW < parse_utc(latest):
            early.append(row)
    return early, latest


def sealed_after(seal: DecisionsSealed, latest: str) -> str:
    """The date decisions after this seal are logged at or after (within the clock skew): its latest decision's,
    and, when it left no decision logged before its `sealed_before` (it was not full), that time."""
    floors = [latest, min(seal.last_ts, _future())]
    if seal.count < MAX_SEAL and isinstance(seal.sealed_before, str) and TIMESTAMP_PATTERN.match(seal.sealed_before):
        floors.append(seal.sealed_before)
    return max(f for f in floors if TIMESTAMP_PATTERN.match(f) or f == "")


def _leaves_in_order(seal: DecisionsSealed) -> bool:
    """Whether the leaves are `count` [seq, decision id, digest] of the range, in strictly increasing seq."""
    well_formed = all(isinstance(leaf, list) and len(leaf) == 3 and isinstance(leaf[0], int) for leaf in seal.leaves)
    if not well_formed or len(seal.leaves) != seal.count or not seal.leaves:
        return False
    seqs = [leaf[0] for leaf in seal.leaves]
    return seqs == sorted(set(seqs)) and seal.first_seq <= seqs[0] and seqs[-1] <= seal.last_seq


def _check_range(
    check: ModelCheck, seal: DecisionsSealed, rows: list[Decision], retention_deleted: bool, dropped_before: str
) -> None:
    present = {d.seq: d for d in rows}
    future = _future()
    for seq, decision_id, digest in seal.leaves:
        row = present.pop(seq, None)
        if row is None and retention_deleted:
            check.expired += 1
        elif row is None:
            check.findings.append(_gone(seq, decision_id, seal))
        elif decision_digest(row) != digest:
            check.findings.append(_edited(row, seal))
        elif problem := _inputs_problem(row, seal, dropped_before):
            check.findings.append(problem)
        elif row.ts > future:
            check.findings.append(
                f"decision {decision_id} (seq {seq}), sealed in ledger entry {seal.seq}, is dated {row.ts}, in the "
                "future: its row was edited before it was sealed (or its writer's clock is wrong)"
            )
        else:
            check.verified += 1
    check.findings += [_inserted(d, seal) for d in present.values()]


def _redated(row: Decision, seal: DecisionsSealed) -> str:
    return (
        f"decision {row.decision_id} (seq {row.seq}), sealed in ledger entry {seal.seq}, is dated {row.ts}, before "
        "decisions logged (or sealed) ahead of it: a date set by hand before it was sealed"
    )


def _gone(seq: int, decision_id: str, seal: DecisionsSealed) -> str:
    return (
        f"decision {decision_id} (seq {seq}), sealed in ledger entry {seal.seq}, is gone from the decision log: "
        "deleted outside retention"
    )


def _edited(row: Decision, seal: DecisionsSealed) -> str:
    return (
        f"decision {row.decision_id} (seq {row.seq}) no longer matches its seal in ledger entry {seal.seq}: "
        "its row was edited"
    )


def _inserted(row: Decision, seal: DecisionsSealed) -> str:
    return (
        f"decision {row.decision_id} (seq {row.seq}) lies in the range ledger entry {seal.seq} sealed "
        f"(seq {seal.first_seq}..{seal.last_seq}) but is not in the seal: inserted"
    )


def _inputs_problem(row: Decision, seal: DecisionsSealed, dropped_before: str) -> str | None:
    """Why a decision's inputs are not the ones it was made on: changed (they no longer have its input digest),
    or gone from a decision more recent than any credible retention run's cut-off for inputs."""
    where = f"decision {row.decision_id} (seq {row.seq}), sealed in ledger entry {seal.seq}"
    if row.features is None:
        if row.ts < dropped_before:
            return None
        return (
            f"{where} and dated {row.ts}: its inputs are gone, but no retention run dropped the inputs of decisions "
            "that recent (removed outside retention)"
        )
    if digest_of({**row.features, **(row.protected or {})}) != row.input_digest:
        return f"{where}: its inputs no longer have its input digest"
    return None


def _inputs_dropped_before(runs: list[RetentionApplied]) -> str:
    """The latest cut-off before which a credibly dated retention run dropped decision inputs ("" if none did)."""
    cutoffs = [
        cutoff
        for run in runs
        if (cutoff := run.decision_inputs_before or (run.cutoffs or {}).get("decision_inputs"))
        and incredible_retention(run.ts, cutoff, "decision inputs") is None
    ]
    return max(cutoffs, default="")


def _retention_deleted(seal: DecisionsSealed, runs: list[RetentionApplied]) -> bool:
    """Whether a retention run after the seal, dated credibly, deleted the model's decisions past its range."""
    return any(
        run.seq > seal.seq
        and run.decisions_before is not None
        and incredible_retention(run.ts, run.decisions_before, "decisions") is None
        and seal.last_ts < run.decisions_before
        for run in runs
    )


# --- one decision ----------------------------------------------------------------------------------


def decision_seal(services: Services, decision: Decision, record: bool = True) -> tuple[dict, str | None]:
    """Where the decision is sealed (or that it is not yet), and how its row disagrees with the seal, if it does:
    the seal holding its id sealed it at another seq or model, or with another digest; or a seal spans its seq
    without holding it (ledgered as an incident, once, when `record`: a console page only reports it)."""
    holder = _holding(services, decision.decision_id)
    if holder is not None:
        seal, (seq, _id, digest) = holder
        runs = services.ledger.events(RetentionApplied, model=decision.model)
        problem = (
            _moved(decision, seal, seq)
            if (seal.model, seq) != (decision.model, decision.seq)
            else _edited(decision, seal)
            if digest != decision_digest(decision)
            else _inputs_problem(decision, seal, _inputs_dropped_before(runs))
        )
    else:
        last = services.ledger.latest(DecisionsSealed, model=decision.model, typed=False)
        if last is None or (not unreadable(last) and decision.seq > last.last_seq):
            return {"status": "not yet sealed"}, None
        # a row inside the model's sealed range that no seal holds: which seal spans it (the model's seals read)
        seals = [s for s in services.ledger.events(DecisionsSealed, model=decision.model, typed=False)]
        spans = [s for s in seals if not unreadable(s) and s.first_seq <= decision.seq <= s.last_seq]
        if not spans:
            return {"status": "not yet sealed"}, None
        seal, problem = spans[0], _inserted(decision, spans[0])
    if record:
        record_incidents(services, seal.model, [problem] if problem else [], ACTOR)
    where = {"ledger_entry": seal.seq, "entry_hash": seal.entry_hash, "range": [seal.first_seq, seal.last_seq]}
    return {"status": "DOES NOT MATCH ITS SEAL" if problem else "sealed", **where}, problem


def _moved(row: Decision, seal: DecisionsSealed, seq: int) -> str:
    return (
        f"decision {row.decision_id} is at seq {row.seq} of {row.model} in the decision log, but ledger entry "
        f"{seal.seq} sealed it at seq {seq} of {seal.model}: its row was moved"
    )


def sealed_but_gone(services: Services, log: DecisionLog, decision_id: str, record: bool = True) -> str | None:
    """Why a decision that is not in the log is not there, if a seal holds it: retention deleted it (its whole
    range is gone), or it was deleted outside retention (ledgered as an incident, once, when `record`)."""
    holder = _holding(services, decision_id)
    if holder is None:
        return None
    seal, (seq, _id, _digest) = holder
    runs = services.ledger.events(RetentionApplied, model=seal.model)
    if not log.between(seal.model, seal.first_seq, seal.last_seq) and _retention_deleted(seal, runs):
        return f"decision {decision_id} (seq {seq}), sealed in ledger entry {seal.seq}, was deleted by retention"
    problem = _gone(seq, decision_id, seal)
    if record:
        record_incidents(services, seal.model, [problem], ACTOR)
    return problem


def _holding(services: Services, decision_id: str) -> tuple[DecisionsSealed, list] | None:
    """The first readable seal that holds this decision id, and its leaf. Only the seals whose stored bytes have
    the id as canonical JSON are read (the database searches them: a trace does not read a million leaves)."""
    found = services.ledger.events(DecisionsSealed, typed=False, containing=canonical_json(decision_id).decode())
    return next(((s, leaf) for s in found if not unreadable(s) for leaf in s.leaves if leaf[1] == decision_id), None)
