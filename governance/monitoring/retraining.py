"""Retraining requested by automation: signed, authorised by policy and ledgered before any run starts.

Monitoring (a window that calls for `retrain`) and the retraining schedule ask
here; the system principal must be allowed to `train` the model
(policies/authorisation.cedar). The request is the ledger event
`RetrainingRequested`; the retraining sensor launches the candidate run for
each request (the schedule's is made by the run it launches, never while the
schedule is evaluated). The candidate stops at
the approval request: automation never promotes.
"""

from __future__ import annotations

from datetime import timedelta

from governance import events
from governance.errors import GovernanceError
from governance.ledger.records import LedgerEntry
from governance.policy.authz import ModelSubject, authorize, roles_of
from governance.registry import version_key
from governance.release.services import SYSTEM, Services
from governance.trust.statements import Statement, sign
from governance.trust.store import StatementRefused

STATEMENT_VALIDITY = timedelta(minutes=10)
MONITORING, SCHEDULE = "monitoring", "schedule"


class RetrainingRefused(GovernanceError):
    """The policy does not let automation train this model. Ledgered with the reasons."""


def request_retraining(
    services: Services, model: str, trigger: str, reason: str, details: dict | None = None
) -> LedgerEntry:
    """Sign, authorise and ledger a retraining of `model` by the system principal; raise RetrainingRefused if denied."""
    signed = sign(
        Statement.new(
            "train",
            {"model": model},
            SYSTEM,
            valid_for=STATEMENT_VALIDITY,
            comment=f"retraining requested by {trigger}",
        ),
        services.system_key(),
    )
    try:
        services.statements.submit(signed, services.roster)
    except StatementRefused as refusal:
        raise RetrainingRefused(f"retraining of {model} refused: {refusal.reason}") from None
    decision = authorize(services.policies, roles_of(services.roster), SYSTEM, "train", ModelSubject(model))
    champion = services.registry.champion(model)
    fields = {
        "actor": SYSTEM,
        "model": model,
        "version": version_key(model, champion) if champion else None,
        "policy": decision.policy_digest,
        "statement": signed.digest,
        "trigger": trigger,
        "reason": reason,
        **(details or {}),
    }
    if not decision.allowed:
        services.ledger.append(events.RetrainingRefused(**fields, refused_because=tuple(decision.reasons)))
        raise RetrainingRefused(f"retraining of {model} by {SYSTEM} refused: {' '.join(decision.reasons)}")
    return services.ledger.append(events.RetrainingRequested(**fields))


def monitoring_requests(
    services: Services,
    model: str | None,
    after_seq: int = 0,
    checked: bool = True,
    triggers: tuple[str, ...] = (MONITORING,),
) -> list[events.RetrainingRequested]:
    """Retraining requests of `triggers` (default: monitoring's) for `model` (None: any model) after ledger entry
    `after_seq`, oldest first."""
    return [
        requested
        for requested in services.ledger.events(
            events.RetrainingRequested, model=model, since_seq=after_seq, checked=checked
        )
        if requested.trigger in triggers
    ]
