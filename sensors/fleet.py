"""A release sensor's tick over every governed model (`approvals`, `candidate_requests`).

Each tick visits the models in turn within the time budget (governance.fleet), each from its own position in
the sensor's cursor (what the model's own sensor of earlier releases kept), and gathers what the visits ask of
the daemon. What cannot be read for one model now leaves its position in place and says why; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from governance.config import GovernedModel
from governance.errors import GovernanceError, brief
from governance.fleet import CursorError, ModelCursors, take_turns, waiting

_MAX_MESSAGE = 4000


@dataclass(frozen=True)
class Visit:
    """What a tick decided for one model: its position afterwards, and what it asks of the daemon and says."""

    position: Any
    requests: tuple[dg.RunRequest, ...] = ()
    partitions: tuple[dg.AddDynamicPartitionsRequest, ...] = ()
    observations: tuple[dg.AssetObservation, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def fleet_tick(
    context: dg.SensorEvaluationContext,
    models: Sequence[GovernedModel],
    visit: Callable[[GovernedModel, Any], Visit],
    example: str,
    idle: str,
) -> dg.SensorResult:
    """One tick: `visit(model, position)` each model in turn; `example` shows the cursor, `idle` is the skip
    reason of a tick that launches nothing."""
    try:
        cursors = ModelCursors.parse(context.cursor, example)
    except CursorError as exc:
        return dg.SensorResult(skip_reason=str(exc))
    turns = take_turns(models, cursors.resume, lambda model: _visit(visit, model, cursors.positions.get(model.name)))
    for model, seen in turns.visits:
        for warning in seen.warnings:
            context.log.warning(f"{model.name}: {warning}")
    moved = {model.name: seen.position for model, seen in turns.visits if seen.position is not None}
    cursor = cursors.after(models, turns, moved).dumps()
    visits = [seen for _, seen in turns.visits]
    requests = [request for seen in visits for request in seen.requests]
    observations = [event for seen in visits for event in seen.observations]
    said = [f"{model.name}: {line}" for model, seen in turns.visits for line in (*seen.warnings, *seen.notes)]
    if requests:
        if said:
            context.log.info("; ".join(said))
        partitions = [partition for seen in visits for partition in seen.partitions]
        return dg.SensorResult(
            run_requests=requests, dynamic_partitions_requests=partitions, asset_events=observations, cursor=cursor
        )
    skipped = "; ".join([idle, *said, *waiting(turns.resume)])[:_MAX_MESSAGE]
    context.log.info(skipped)  # the tick's log, not only the hover text of a skipped tick
    return dg.SensorResult(skip_reason=skipped, asset_events=observations, cursor=cursor)


def _visit(visit: Callable[[GovernedModel, Any], Visit], model: GovernedModel, position: Any) -> Visit:
    try:
        return visit(model, position)
    except CursorError as exc:
        return Visit(position, warnings=(str(exc),))
    except (GovernanceError, SQLAlchemyError, OSError) as exc:
        return Visit(position, warnings=(f"not read now (tried again next tick): {brief(exc)}",))
