"""Judging every governed model's new windows in one sensor tick per concern, within a time budget.

One sensor per concern walks the models in turn (`governance.fleet`), each from
its own cursor (the streams' last closed windows, as `scan` keeps them). New
models start at the beginning of their decision log, as a new model's sensor
did.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from governance.config import GovernedModel
from governance.fleet import TICK_BUDGET_SECONDS, CursorError, stored_positions, take_turns, waiting
from governance.monitoring.monitor import Monitor, Scan, scan
from governance.monitoring.windows import Cursor


@dataclass(frozen=True)
class FleetCursor:
    """Per model, its streams' cursor positions; and the model the next tick starts with (None: the first)."""

    windows: dict[str, dict[str, int]]
    resume: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> FleetCursor:
        if not text:
            return cls({})
        what = 'a fleet monitoring cursor (expected JSON like {"windows": {"credit_scoring": {"live": 1500}}})'
        windows, resume = stored_positions(text, "windows", what)
        if not all(isinstance(p, dict) for p in windows.values()):
            raise CursorError(f"sensor cursor {text[:200]!r} is not {what}; reset it in the Dagster UI")
        return cls({model: dict(positions) for model, positions in windows.items()}, resume)

    def of(self, model: str, streams: tuple[str, ...]) -> Cursor:
        """One model's cursor (validated as a single model's sensor validated its own)."""
        return Cursor.parse(json.dumps(self.windows[model]) if model in self.windows else None, streams)

    def dumps(self) -> str:
        return json.dumps({"windows": self.windows, "resume": self.resume}, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class FleetScan:
    """What one tick judged, per model visited (in the order visited), and the cursor to store."""

    scans: tuple[tuple[GovernedModel, Scan], ...]
    refused: tuple[str, ...]  # models whose stored cursor this module did not write
    cursor: FleetCursor

    def message(self) -> str:
        visited = [f"{model.name}: {result.message() or 'nothing to judge'}" for model, result in self.scans]
        return "; ".join([*visited, *self.refused, *waiting(self.cursor.resume)])


def scan_fleet(
    monitor: Monitor,
    models: Sequence[GovernedModel],
    streams: dict[str, tuple[str, ...]],
    cursor: FleetCursor,
    budget_seconds: float = TICK_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> FleetScan:
    """Scan each model's streams from its cursor, in turn from `cursor.resume`, until the budget is spent."""

    def visit(model: GovernedModel) -> Scan | str:
        try:
            own = cursor.of(model.name, tuple(streams))
        except CursorError as exc:
            return f"{model.name}: {exc}"
        return scan(monitor, model, streams, own)

    turns = take_turns(models, cursor.resume, visit, budget_seconds, clock)
    scans = tuple((model, result) for model, result in turns.visits if isinstance(result, Scan))
    windows = {m.name: cursor.windows[m.name] for m in models if m.name in cursor.windows}
    for model, result in scans:
        windows[model.name] = {**windows.get(model.name, {}), **result.cursor.positions}
    refused = tuple(result for _, result in turns.visits if isinstance(result, str))
    return FleetScan(scans, refused, FleetCursor(windows, turns.resume))
