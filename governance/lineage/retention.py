"""Retention: forgetting what the configured periods say to forget, without breaking any proof.

Decision inputs (features and protected attributes) go after
`decision_features_days` (the input digest stays, so a decision can still be
matched to an input someone presents); decision rows after `decision_log_days`,
a sealed range at a time (the run seals what it may delete first, and deletes a
range once all its decisions are past the period, so that `govern decisions
verify` tells a deletion by retention from one by hand); ledger payloads after
`ledger_payload_days`. Ledger entries hash their
payload's digest, not the payload, so the chain and every Merkle proof still
verify: the run ends by verifying the whole ledger, and it records itself in
the ledger (`RetentionApplied`, one entry per model) so that an examiner sees
when and what was forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from governance import events
from governance.config import Retention
from governance.decisions import DecisionLog
from governance.lineage.decision_seals import (
    dated_by_hand,
    decision_digest,
    seal_decisions,
    seal_problem,
    sealed_after,
    unreadable,
)
from governance.release.services import Services
from governance.timestamps import utc_now, utc_timestamp

ACTOR = "system:retention"


@dataclass(frozen=True)
class RetentionRun:
    at: str
    cutoffs: dict[str, str]  # what -> records made before this time were forgotten
    decision_inputs_expired: dict[str, int]  # per model
    decisions_deleted: dict[str, int]
    ledger_payloads_expired: int
    ledger_ok: bool
    ledger_problem: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def apply_retention(
    services: Services, retention: Retention, models: list[str], now: datetime | None = None
) -> RetentionRun:
    """Apply `retention` to the decision log (the configured `models` and any other model found in it)
    and to the ledger; then verify the ledger."""
    now = now or utc_now()
    cutoffs = {
        "decision_inputs": utc_timestamp(now - timedelta(days=retention.decision_features_days)),
        "decisions": utc_timestamp(now - timedelta(days=retention.decision_log_days)),
        "ledger_payloads": utc_timestamp(now - timedelta(days=retention.ledger_payload_days)),
    }
    log = DecisionLog.for_settings(services.settings)
    names = sorted(set(models) | set(log.models()))
    seal_decisions(services, log, cutoffs["decisions"])  # nothing is deleted unsealed
    deleted = {name: _delete_sealed(services, log, name, cutoffs["decisions"]) for name in names}
    inputs = {name: log.expire_inputs(name, cutoffs["decision_inputs"]) for name in names}
    payloads = services.ledger.expire_payloads(now - timedelta(days=retention.ledger_payload_days))
    services.ledger.append_many(
        [
            events.RetentionApplied(
                actor=ACTOR,
                model=name,
                ledger_payloads_before=cutoffs["ledger_payloads"],
                decisions_before=cutoffs["decisions"],
                decision_inputs_before=cutoffs["decision_inputs"],
                cutoffs=cutoffs,
                decision_inputs_expired=inputs[name],
                decisions_deleted=deleted[name],
                ledger_payloads_expired_all_models=payloads,
            )
            for name in names
        ]
    )
    report = services.ledger.verify()
    return RetentionRun(
        at=utc_timestamp(now),
        cutoffs=cutoffs,
        decision_inputs_expired=inputs,
        decisions_deleted=deleted,
        ledger_payloads_expired=payloads,
        ledger_ok=report.ok,
        ledger_problem=report.problem,
    )


def _delete_sealed(services: Services, log: DecisionLog, model: str, before: str) -> int:
    """Delete `model`'s sealed ranges whose decisions were all made, and sealed, before `before`, oldest first;
    how many decisions went. A range is deleted whole, so that verification tells retention from tampering. A seal
    counts only if it reads, abuts the one before, was ledgered before `before` (the ledger dates it, where a
    writer of the decision log dates decisions), and its leaves are its range's rows as they stand, each made
    before `before` and none dated before a decision logged ahead of it: deletion stops at a seal a ledger writer
    forged over recent decisions, dated old or re-dated. Sealing within a minute (the guard) costs a minute of
    retention; a range sealed late is kept `decision_log_days` from its sealing."""
    through = after = 0
    latest = ""
    misdated = services.ledger.misdated()
    for seal in services.ledger.events(events.DecisionsSealed, model=model, typed=False):
        if unreadable(seal) or seal_problem(seal, after) or max(seal.last_ts, seal.ts) >= before:
            break
        if seal.seq in misdated:
            break
        after = seal.last_seq
        rows = log.between(model, seal.first_seq, seal.last_seq)
        early, latest = dated_by_hand(rows, latest)
        if rows and (
            early
            or any(d.ts >= before for d in rows)
            or [[d.seq, d.decision_id, decision_digest(d)] for d in rows] != [list(leaf) for leaf in seal.leaves]
        ):
            break
        latest = sealed_after(seal, latest)
        through = seal.last_seq
    return log.delete_through(model, through) if through else 0
