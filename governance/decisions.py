"""The decision log: every decision the scoring API makes, in order.

One row per decision, written before the answer leaves the API: a sequence
number (monitoring windows and sensor cursors use it), a decision id (what the
customer and `govern trace` use), time, model and version, the SHA-256 of the
canonical input, the features (for drift monitoring; retention may expire them
while the digest stays), protected attributes only where the model's config
collects them for monitoring, score, outcome, reasons, how many features were
withheld from the reasons (protected attributes or flagged proxies that would have
been among them), whether the kill switch was on and, for a safe-state answer, why. Labels (the real outcome)
arrive later and are joined by id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from governance.db import UtcTimestamp, engine_for
from governance.errors import GovernanceError
from governance.migrations import require_current
from governance.timestamps import parse_utc

metadata = MetaData()
decisions = Table(
    "decisions",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("decision_id", String(40), nullable=False, unique=True),
    Column("ts", UtcTimestamp, nullable=False),
    Column("model", String(100), nullable=False),
    Column("version", Integer),  # None when no champion could be served (safe state)
    Column("input_digest", String(64), nullable=False),
    Column("features", Text),  # JSON; None once expired by retention
    Column("protected", Text),  # JSON; only when collected for monitoring
    Column("score", Float),  # None in the safe state
    Column("outcome", String(20), nullable=False),  # approve | decline | refer
    Column("reasons", Text, nullable=False),  # JSON list of {code, feature, text}
    Column("reasons_withheld", Integer),  # protected attributes or flagged proxies kept out of the reasons
    Column("kill_switch", Boolean, nullable=False),
    Column("safe_state_reason", Text),  # why the safe state answered (kill switch, no champion, ...); None if scored
    Column("label", Integer),
    Column("labelled_at", UtcTimestamp),
    Index("ix_decisions_model_seq", "model", "seq"),
    Index("ix_decisions_model_ts", "model", "ts"),  # retention deletes through it
)


@dataclass(frozen=True)
class Decision:
    seq: int
    decision_id: str
    ts: str
    model: str
    version: int | None
    input_digest: str
    features: dict | None
    protected: dict | None
    score: float | None
    outcome: str
    reasons: list[dict]
    kill_switch: bool
    label: int | None = None
    labelled_at: str | None = None
    safe_state_reason: str | None = None
    reasons_withheld: int | None = None

    @classmethod
    def from_row(cls, row) -> Decision:
        data = dict(row)
        for field in ("features", "protected"):
            data[field] = json.loads(data[field]) if data[field] is not None else None
        data["reasons"] = json.loads(data["reasons"])
        return cls(**data)

    def malformed(self) -> str | None:
        """What in this decision no code of the project writes; None when it is well formed."""
        if not isinstance(self.reasons, list) or not all(isinstance(r, dict) for r in self.reasons):
            return f"its reasons are {type(self.reasons).__name__} {self.reasons!r:.80}, not a list of reason codes"
        for name in ("features", "protected"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                return f"its {name} are {type(value).__name__}, not a mapping"
        try:
            parse_utc(self.ts)
        except (ValueError, TypeError):
            return f"its time {self.ts!r:.40} is not a UTC timestamp"
        return None


class DecisionRowError(GovernanceError):
    """A decision row that is not one the project writes."""


class DecisionLog:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        require_current(self.engine, "decisions")

    @classmethod
    def for_settings(cls, settings) -> DecisionLog:
        return cls(settings.decisions_url)

    def record(
        self,
        *,
        decision_id: str,
        ts: str,
        model: str,
        version: int | None,
        input_digest: str,
        features: dict | None,
        protected: dict | None,
        score: float | None,
        outcome: str,
        reasons: list[dict],
        kill_switch: bool,
        safe_state_reason: str | None = None,
        reasons_withheld: int | None = None,
    ) -> int:
        """Append one decision (committed on return) and give its sequence number."""
        return self.record_many(
            [
                dict(
                    decision_id=decision_id,
                    ts=ts,
                    model=model,
                    version=version,
                    input_digest=input_digest,
                    features=features,
                    protected=protected,
                    score=score,
                    outcome=outcome,
                    reasons=reasons,
                    kill_switch=kill_switch,
                    safe_state_reason=safe_state_reason,
                    reasons_withheld=reasons_withheld,
                )
            ]
        )[0]

    def record_many(self, rows: list[dict]) -> list[int]:
        """Append decisions (the fields of `record`) in one commit; their sequence numbers, in order."""
        encoded = [
            {
                **row,
                "features": _json_or_none(row["features"]),
                "protected": _json_or_none(row["protected"]),
                "reasons": _json(row["reasons"]),
                "reasons_withheld": row.get("reasons_withheld"),
            }
            for row in rows
        ]
        with self.engine.begin() as conn:
            result = conn.execute(insert(decisions).returning(decisions.c.seq, sort_by_parameter_order=True), encoded)
            return list(result.scalars())

    def ping(self) -> None:
        """Raise if the log's database cannot be reached."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def get(self, decision_id: str) -> Decision | None:
        """One decision, read as its row says; a DecisionRowError naming it if the row is not one this project
        writes (edited by hand: `govern decisions verify` names edits to sealed rows)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(decisions).where(decisions.c.decision_id == decision_id)).mappings().first()
        if row is None:
            return None
        try:
            decision = Decision.from_row(row)
            problem = decision.malformed()
        except (ValueError, TypeError) as exc:  # JSON that does not parse, a column of the wrong type
            problem = f"it does not read as a decision ({exc})"
        if problem:
            raise DecisionRowError(
                f"decision {decision_id} (row {row['seq']}): {problem}: the row was written outside the project"
            )
        return decision

    def window(self, model: str, after_seq: int, limit: int) -> list[Decision]:
        """Up to `limit` decisions of `model` with seq > after_seq, oldest first."""
        query = (
            select(decisions)
            .where(decisions.c.model == model, decisions.c.seq > after_seq)
            .order_by(decisions.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [Decision.from_row(row) for row in conn.execute(query).mappings()]

    def between(self, model: str, first_seq: int, last_seq: int) -> list[Decision]:
        """`model`'s decisions with first_seq <= seq <= last_seq, oldest first."""
        c = decisions.c
        query = select(decisions).where(c.model == model, c.seq.between(first_seq, last_seq)).order_by(c.seq)
        with self.engine.connect() as conn:
            return [Decision.from_row(row) for row in conn.execute(query).mappings()]

    def count(self, model: str | None = None, after_seq: int = 0, before: str | None = None) -> int:
        """How many decisions (of `model`) have seq > after_seq (and were made before `before`, if given)."""
        query = select(func.count()).select_from(decisions).where(decisions.c.seq > after_seq)
        if model:
            query = query.where(decisions.c.model == model)
        if before:
            query = query.where(decisions.c.ts < before)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def last_seq(self, model: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.coalesce(func.max(decisions.c.seq), 0)).where(decisions.c.model == model)
            ).scalar_one()

    def add_labels(self, labels: list[tuple[str, int]], labelled_at: str) -> int:
        """Join real outcomes to decisions by id; returns how many decisions were labelled."""
        statement = (
            update(decisions)
            .where(decisions.c.decision_id == bindparam("id"))
            .values(label=bindparam("label"), labelled_at=labelled_at)
        )
        with self.engine.begin() as conn:
            result = conn.execute(statement, [{"id": i, "label": v} for i, v in labels])
        return result.rowcount

    # --- retention ---------------------------------------------------------------------------
    def models(self) -> list[str]:
        """Every model with decisions in the log."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(decisions.c.model).distinct()).scalars())

    def expire_inputs(self, model: str, before: str) -> int:
        """Drop the features and protected attributes of `model`'s decisions made before `before` (a UTC
        timestamp); the input digest, version, score, outcome and reasons stay. Returns the rows changed."""
        c = decisions.c
        statement = (
            update(decisions)
            .where(c.model == model, c.ts < before, or_(c.features.is_not(None), c.protected.is_not(None)))
            .values(features=None, protected=None)
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount

    def delete_through(self, model: str, last_seq: int) -> int:
        """Delete `model`'s decisions with seq <= last_seq (retention's end of a sealed range); returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(
                delete(decisions).where(decisions.c.model == model, decisions.c.seq <= last_seq)
            ).rowcount


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _json_or_none(value) -> str | None:
    return None if value is None else _json(value)
