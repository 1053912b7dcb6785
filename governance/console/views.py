"""What the console shows, read from the stores (never written): each model's verified state, ledger pages.

The champion and the kill switch are the verified ones (`governance.release.production`); rows and the MLflow
alias are caches and show up only as incidents where they disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from governance import events
from governance.config import GovernedModel
from governance.errors import GovernanceError
from governance.ledger import LAST_SEQ, LedgerEntry
from governance.lineage.proofs import altered
from governance.monitoring.recorded import drift_since_trained, predates_drift_text
from governance.release.approvals import (
    ApprovalRefused,
    ApprovalRequest,
    approval_stage,
    deployed_approvals,
    latest_request,
    who_may_approve,
)
from governance.release.production import Production, open_incidents, verified_production
from governance.release.requests import requesters
from governance.release.services import Services

PAGE = 50  # ledger entries per page


@dataclass(frozen=True)
class Waiting:
    """A version whose sealed evidence waits for a person: to approve it, or to release the approval."""

    request: ApprovalRequest
    stage: str  # "pending" or "awaiting_release"
    approver: str | None
    may_approve: tuple[str, ...] = ()
    problem: str | None = None
    requested_by: str = ""  # who verifiably asked for the version, or that nobody is known to have
    predates_drift: tuple[str, ...] = ()  # drift alerted since it was trained: its evidence does not reflect it


@dataclass(frozen=True)
class ModelState:
    model: GovernedModel
    production: Production | None  # None when the record cannot be read (see `problem`)
    incidents: list[str] = field(default_factory=list)  # open ones; unknown while `problem` is set
    waiting: list[Waiting] | None = field(default_factory=list)  # None: the record cannot say
    verdict: events.WindowJudged | None = None
    problem: str | None = None


def model_state(services: Services, model: GovernedModel) -> ModelState:
    """The model's verified production, open incidents, approvals waiting and last monitoring verdict."""
    verdict = services.ledger.latest(events.WindowJudged, model=model.name, checked=False)
    try:
        waiting: list[Waiting] | None = _waiting(services, model.name)
    except GovernanceError:
        waiting = None  # unknown, said as such: never "nothing waits"
    try:
        production = verified_production(services, model.name)
        incidents = open_incidents(services, production)
    except GovernanceError as exc:  # an altered entry the verified state rests on: no state can be vouched for
        return ModelState(model=model, production=None, waiting=waiting, verdict=verdict, problem=str(exc))
    return ModelState(model, production, incidents, waiting, verdict)


def _waiting(services: Services, model: str) -> list[Waiting]:
    requested = services.ledger.events(events.ApprovalRequested, model=model, checked=False)
    deployed = deployed_approvals(services, model)
    found = []
    for version in dict.fromkeys(r.version for r in requested):
        try:
            request = latest_request(services, model, version)
        except ApprovalRefused:
            continue
        stage = approval_stage(services, request, deployed)
        if stage is None:
            continue
        if stage[0] == "pending":
            try:  # an altered entry behind this version is its own problem, not the model's
                asked = requesters(services, model, version).describe()
                drift = drift_since_trained(services.ledger, services.settings, model, version)
                may = tuple(who_may_approve(services, request))
                drifts = tuple(map(predates_drift_text, drift))
                found.append(Waiting(request, "pending", None, may, requested_by=asked, predates_drift=drifts))
            except GovernanceError as exc:
                found.append(Waiting(request, "pending", None, problem=str(exc), requested_by="(not known)"))
        else:
            found.append(Waiting(request, stage[0], stage[1]))
    return found


def registered_versions(services: Services, model: str) -> list[events.ModelRegistered]:
    return services.ledger.events(events.ModelRegistered, model=model, checked=False)


def monitoring_verdicts(services: Services, model: str, limit: int = 20) -> list[events.WindowJudged]:
    return services.ledger.events(events.WindowJudged, model=model, limit=limit, checked=False)[::-1]


@dataclass(frozen=True)
class LedgerPage:
    entries: list[tuple[LedgerEntry, str | None]]  # newest first, each with why it no longer hashes (None: it does)
    size: int
    older: int | None  # `before` for the next (older) page; None on the last page


def ledger_page(
    services: Services,
    *,
    model: str | None,
    version: str | None,
    action: str | None,
    before: int | None,
    limit: int = PAGE,
) -> LedgerPage:
    """Entries matching the filters before entry `before` (default: the head), the most recent `limit`; as stored,
    each checked on its own (an altered entry is listed and named, the whole chain is `verify`'s)."""
    found = services.ledger.entries(
        model=model, version=version, action=action, before_seq=before, limit=limit + 1, checked=False
    )
    more = len(found) > limit
    shown = found[-limit:] if limit else []
    return LedgerPage(
        entries=[(e, altered(e.to_dict())) for e in reversed(shown)],
        size=services.ledger.size(),
        older=shown[0].seq if more and shown else None,
    )


def stored_entry(services: Services, seq: int) -> LedgerEntry | None:
    """Entry `seq` as stored (not refused when altered: the page says so), or None (for any number a store
    cannot hold too)."""
    if not 1 <= seq <= LAST_SEQ:
        return None
    found = services.ledger.entries(since_seq=seq - 1, before_seq=seq + 1, checked=False)
    return found[0] if found else None
