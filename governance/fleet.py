"""A sensor for every governed model: one tick visits the models in turn, each from its own cursor, in a time budget.

The number of sensors the daemon evaluates does not grow with the number of
models. A tick visits the models in config order from the one the last tick
did not reach, and starts no model once `budget_seconds` have passed (the next
tick resumes with it); a tick that visits every model starts the next one from
the first again. Per model, the cursor keeps what that model's own sensor kept:
models no longer configured drop out of it, and a model it does not name yet
starts where a new model's sensor started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from governance.config import GovernedModel
from governance.errors import GovernanceError

# Dagster fails a sensor evaluation after 60 s by default; a tick stops starting models well before that.
TICK_BUDGET_SECONDS = 20.0
T = TypeVar("T")


class CursorError(GovernanceError):
    """A sensor cursor is not one this code wrote."""


def in_turn(models: Sequence[GovernedModel], resume: str | None) -> list[GovernedModel]:
    """The models in config order, starting with `resume` (the first if it is None or no longer configured)."""
    names = [m.name for m in models]
    start = names.index(resume) if resume in names else 0
    return [*models[start:], *models[:start]]


@dataclass(frozen=True)
class Turns(Generic[T]):
    """What a tick found per model visited (in the order visited), and the model the next tick starts with (None:
    the first)."""

    visits: tuple[tuple[GovernedModel, T], ...]
    resume: str | None


def waiting(resume: str | None) -> list[str]:
    """What a tick says of the models it did not reach (none if `resume` is None)."""
    return [f"models from {resume} on wait for the next tick (time budget)"] if resume else []


def take_turns(
    models: Sequence[GovernedModel],
    resume: str | None,
    visit: Callable[[GovernedModel], T],
    budget_seconds: float = TICK_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Turns[T]:
    """`visit` each model in turn from `resume` until the budget is spent (the first one always)."""
    started = clock()
    visits: list[tuple[GovernedModel, T]] = []
    for model in in_turn(models, resume):
        if visits and clock() - started >= budget_seconds:
            return Turns(tuple(visits), model.name)
        visits.append((model, visit(model)))
    return Turns(tuple(visits), None)


@dataclass(frozen=True)
class ModelCursors:
    """A fleet sensor's cursor: per model, its position (any JSON value, the sensor's own), and the model the next
    tick starts with."""

    positions: dict[str, Any]
    resume: str | None = None

    @classmethod
    def parse(cls, text: str | None, example: str) -> ModelCursors:
        """A stored cursor (`example`: what one looks like, for the message if `text` is not one)."""
        if not text:
            return cls({})
        positions, resume = stored_positions(text, "models", f"this sensor's cursor (expected JSON like {example})")
        return cls(positions, resume)

    def after(self, models: Sequence[GovernedModel], turns: Turns[Any], moved: dict[str, Any]) -> ModelCursors:
        """The cursor after a tick: the `moved` positions, the others kept (of configured models only)."""
        configured = {m.name for m in models}
        kept = {name: position for name, position in self.positions.items() if name in configured}
        return ModelCursors({**kept, **moved}, turns.resume)

    def dumps(self) -> str:
        return json.dumps({"models": self.positions, "resume": self.resume}, sort_keys=True, separators=(",", ":"))


def stored_positions(text: str, key: str, what: str) -> tuple[dict[str, Any], str | None]:
    """A stored fleet cursor's per-model positions (under `key`) and resume model; `what` says what `text` should
    have been, for the message when it is not."""
    try:
        stored: Any = json.loads(text)
    except ValueError:
        stored = None
    positions = stored.get(key) if isinstance(stored, dict) else None
    if not isinstance(positions, dict):
        raise CursorError(f"sensor cursor {text[:200]!r} is not {what}; reset it in the Dagster UI")
    resume = stored.get("resume")
    return positions, resume if isinstance(resume, str) else None
