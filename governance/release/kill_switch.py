"""The kill switch: put a model's serving in the safe state (every answer "refer"), or lift it.

Both are signed statements with a reason, authorised by Cedar (people and
automation may disable; only a person may enable) and ledgered. Serving reads
the control store's row per batch, so a flip takes effect for the next batch,
and holds the switch on while the latest verified signed statement says on,
whatever the row says (`governance.release.production`).
"""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance import events
from governance.control import KillSwitch
from governance.errors import GovernanceError
from governance.policy.authz import ModelSubject, authorize, roles_of
from governance.release.services import Services
from governance.trust.statements import Statement, sign
from governance.trust.store import StatementRefused

STATEMENT_VALIDITY = timedelta(minutes=10)


class KillSwitchRefused(GovernanceError):
    """The flip was refused; the kill switch did not change. Ledgered with its reason."""


def set_kill_switch(
    services: Services, model: str, disabled: bool, principal: str, private_key: Ed25519PrivateKey, reason: str
) -> KillSwitch:
    services.governed_model(model)
    action = "disable" if disabled else "enable"
    if not reason.strip():
        raise KillSwitchRefused(f"{action} of {model} needs a reason: the ledger and the people it informs read it")
    signed = sign(
        Statement.new(action, {"model": model}, principal, valid_for=STATEMENT_VALIDITY, comment=reason), private_key
    )
    roster = services.roster
    try:
        services.statements.submit(signed, roster)
    except StatementRefused as refusal:
        raise KillSwitchRefused(f"{action} refused: {refusal.reason}") from None
    owner = services.governed_model(model).owners.business_owner
    decision = authorize(services.policies, roles_of(roster), principal, action, ModelSubject(model, owner))
    if not decision.allowed:
        services.ledger.append(
            events.KillSwitchRefused(
                actor=principal,
                model=model,
                statement=signed.digest,
                policy=decision.policy_digest,
                statement_action=action,
                reason=" ".join(decision.reasons),
            )
        )
        raise KillSwitchRefused(f"{action} of {model} by {principal} refused: {' '.join(decision.reasons)}")
    state = services.control.set_kill_switch(model, disabled, reason, principal, signed.digest)
    flipped = events.KillSwitchOn if disabled else events.KillSwitchOff
    services.ledger.append(
        flipped(actor=principal, model=model, statement=signed.digest, policy=decision.policy_digest, reason=reason)
    )
    return state
