"""Monitoring windows over the decision log, and the cursors that walk them.

A window is the next `window_size` decisions of one model after a cursor (a
decision-log sequence number). Every window a sensor closes moves its cursor to
the window's last decision, so boundaries depend only on where monitoring
started: sensors that start together see the same windows, and a sensor that
resumes from its stored cursor neither skips nor repeats one.

A window is judged on the decisions of one version, the version of its last
scored decision (after a rollback, the window's tail is the new champion's).
Decisions answered in the safe state (no score) and decisions whose inputs
retention expired are not judged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from governance.decisions import DecisionLog, decisions
from governance.errors import GovernanceError
from governance.fleet import CursorError

LIVE, LABELLED = "live", "labelled"
STREAMS = (LIVE, LABELLED)


@dataclass(frozen=True)
class Entry:
    """What deciding whether and how to judge a decision needs (its inputs are read only to judge it)."""

    seq: int
    version: int | None  # None: answered in the safe state
    scored: bool
    has_inputs: bool  # False once retention expired the features
    labelled: bool


@dataclass(frozen=True)
class Observed:
    """A judged decision as the measurements read it (inputs as logged, JSON: decoded when a measurement needs them)."""

    seq: int
    version: int
    score: float
    outcome: str
    features: str
    protected: str | None
    label: int | None


@dataclass(frozen=True)
class Window:
    """Consecutive decisions of one model, oldest first."""

    model: str
    entries: tuple[Entry, ...]

    @property
    def first_seq(self) -> int:
        return self.entries[0].seq

    @property
    def last_seq(self) -> int:
        return self.entries[-1].seq

    @property
    def key(self) -> str:
        """`<first seq>-<last seq>`: names the window in run keys, reports and the ledger."""
        return f"{self.first_seq}-{self.last_seq}"

    @property
    def version(self) -> int | None:
        """The version judged: the one that made the window's last scored decision (None: none scored)."""
        scored = [e.version for e in self.entries if e.scored and e.version is not None]
        return scored[-1] if scored else None

    def judged(self) -> tuple[Entry, ...]:
        """The decisions judged: scored by the judged version, with their inputs still kept."""
        version = self.version
        return tuple(e for e in self.entries if e.version == version and e.scored and e.has_inputs)

    def labelled(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.judged() if e.labelled)


_ENTRY = (
    decisions.c.seq,
    decisions.c.version,
    decisions.c.score.is_not(None).label("scored"),
    decisions.c.features.is_not(None).label("has_inputs"),
    decisions.c.label.is_not(None).label("labelled"),
)


def next_window(log: DecisionLog, model: str, after_seq: int, size: int) -> Window | None:
    """The `size` decisions of `model` after `after_seq`, or None while fewer have been made."""
    query = (
        select(*_ENTRY)
        .where(decisions.c.model == model, decisions.c.seq > after_seq)
        .order_by(decisions.c.seq)
        .limit(size)
    )
    with log.engine.connect() as conn:
        found = tuple(Entry(*row) for row in conn.execute(query))
    return Window(model, found) if len(found) == size else None


def pending(log: DecisionLog, model: str, after_seq: int, size: int) -> int:
    """How many decisions of `model` after `after_seq` an incomplete window holds so far."""
    recent = (
        select(decisions.c.seq).where(decisions.c.model == model, decisions.c.seq > after_seq).limit(size).subquery()
    )
    with log.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(recent)).scalar_one()


def read_window(log: DecisionLog, model: str, first_seq: int, last_seq: int) -> Window:
    """Exactly the decisions of `model` from `first_seq` to `last_seq` (what a sensor judged)."""
    query = (
        select(*_ENTRY)
        .where(decisions.c.model == model, decisions.c.seq >= first_seq, decisions.c.seq <= last_seq)
        .order_by(decisions.c.seq)
    )
    with log.engine.connect() as conn:
        found = tuple(Entry(*row) for row in conn.execute(query))
    if not found or found[0].seq != first_seq or found[-1].seq != last_seq:
        raise GovernanceError(
            f"decision log: no window {first_seq}-{last_seq} of model {model!r} "
            f"(found {len(found)} decisions in that range)"
        )
    return Window(model, found)


def observe(log: DecisionLog, window: Window, entries: tuple[Entry, ...]) -> list[Observed]:
    """The inputs, scores, outcomes and labels of some of a window's decisions, oldest first."""
    wanted = {e.seq for e in entries}
    c = decisions.c
    query = (
        select(c.seq, c.version, c.score, c.outcome, c.features, c.protected, c.label)
        .where(c.model == window.model, c.seq >= window.first_seq, c.seq <= window.last_seq)
        .order_by(c.seq)
    )
    with log.engine.connect() as conn:
        rows = [row for row in conn.execute(query) if row.seq in wanted]
    return [Observed(*row) for row in rows]


def completed_at(log: DecisionLog, model: str, window_key: str) -> str:
    """When a window was complete: the time its last decision was logged."""
    last = int(window_key.split("-")[1])
    with log.engine.connect() as conn:
        found = conn.execute(select(decisions.c.ts).where(decisions.c.model == model, decisions.c.seq == last)).first()
    if found is None:
        raise GovernanceError(f"decision log: no decision {last} of model {model!r} (window {window_key})")
    return found.ts


@dataclass(frozen=True)
class Cursor:
    """Per stream, the last decision seq a sensor has closed a window on."""

    positions: dict[str, int]

    @classmethod
    def parse(cls, text: str | None, streams: tuple[str, ...]) -> Cursor:
        """A stored cursor, or the start (0) for streams it does not name yet."""
        stored: Any = {}
        if text:
            try:
                stored = json.loads(text)
            except ValueError:
                stored = None
            if not isinstance(stored, dict) or not all(
                s in STREAMS and isinstance(v, int) and v >= 0 for s, v in stored.items()
            ):
                raise CursorError(
                    f"sensor cursor {text!r} is not a monitoring cursor "
                    '(expected JSON like {"live": 1500}); reset it in the Dagster UI'
                )
        return cls({stream: stored.get(stream, 0) for stream in streams})

    def moved(self, stream: str, seq: int) -> Cursor:
        return Cursor({**self.positions, stream: seq})

    def dumps(self) -> str:
        return json.dumps(self.positions, sort_keys=True, separators=(",", ":"))
