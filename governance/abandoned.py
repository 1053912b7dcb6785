"""Requests automation gave up on (`events.RequestAbandoned`): a retraining request, or a granted approval, whose
Dagster runs all ended without answering it. Ledgered once per request, by the run that the sensor giving up
launches (a sensor writes nothing while it is evaluated)."""

from __future__ import annotations

from typing import Any

from governance import events
from governance.errors import GovernanceError
from governance.release.services import Services


def abandoned(services: Services, model: str, request: int) -> events.RequestAbandoned | None:
    """The giving up on `model`'s request at ledger entry `request`, if it is ledgered."""
    given_up = services.ledger.events(events.RequestAbandoned, model=model, since_seq=request)
    return next((event for event in given_up if event.request == request), None)


def abandon(
    services: Services, model: str, request: int, runs: tuple[str, ...], reason: str, actor: str
) -> events.RequestAbandoned:
    """Ledger that automation gave up on `model`'s request at ledger entry `request` (a `RetrainingRequested` or an
    `ApprovalGranted`) after `runs`, unless that is ledgered already; the event either way."""
    earlier = abandoned(services, model, request)
    if earlier is not None:
        return earlier
    requested = events.Event.from_entry(services.ledger.entry(request))
    if requested.model != model:
        raise GovernanceError(f"ledger entry {request} is about {requested.model}, not {model}")
    common: dict[str, Any] = {
        "actor": actor,
        "model": model,
        "request": request,
        "request_entry": requested.entry_hash,
        "runs": runs,
        "reason": reason,
    }
    given_up: events.RequestAbandoned
    if isinstance(requested, events.RetrainingRequested):
        given_up = events.RetrainingAbandoned(**common)
    elif isinstance(requested, events.ApprovalGranted):
        given_up = events.ReleaseAbandoned(**common, version=requested.version, approval=requested.statement)
    else:
        raise GovernanceError(
            f"ledger entry {request} records a {type(requested).__name__}, not a request automation launches runs for"
        )
    return type(given_up).from_entry(services.ledger.append(given_up))
