"""Waivers: a signed, time-bound exception to one release-gate rule for one model version.

Granting (`grant_waiver`): the compliance manager's signed "waive" statement
binds {model, version, rule, until}; its reason is the statement's comment and
it expires when the waiver does. The statement store verifies it against the
roster (a forged signature or unknown principal is refused there, and the store
ledgers a `StatementRefused` event); then Cedar decides whether this principal may
waive this rule for this version for that long. A Cedar refusal appends
`WaiverRefused` with the reasons; a grant appends `WaiverGranted`.

Honouring (`honoured_waivers`): the gate counts a waiver only if it was granted
(its `WaiverGranted` event is in the ledger), its statement still verifies
against today's roster, Cedar still authorises it under today's policies, and
it has not expired. Expiry needs nobody to act: an expired waiver is simply
no longer found.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance import events
from governance.errors import GovernanceError
from governance.ledger import Ledger
from governance.policy.authz import AuthzDecision, VersionSubject, authorize, roles_of
from governance.policy.bundle import PolicyBundle, PolicyError
from governance.policy.gate import Waiver
from governance.timestamps import parse_utc, utc_now, utc_timestamp
from governance.trust.roster import Roster
from governance.trust.statements import SignedStatement, Statement, sign
from governance.trust.store import StatementRefused, StatementStore

WAIVE = "waive"


class WaiverRefused(GovernanceError):
    """A waiver was not granted; the message says why. The refusal is in the ledger."""


def waiver_context(bundle: PolicyBundle, rule_id: str, granted_at: datetime, until: datetime) -> dict:
    """Context of a `waive` request: the rule, whether it is @unwaivable, and whole days (rounded up)."""
    return {
        "rule": rule_id,
        "rule_unwaivable": bundle.rule(rule_id).unwaivable,
        "duration_days": math.ceil((until - granted_at) / timedelta(days=1)),
    }


def grant_waiver(
    *,
    bundle: PolicyBundle,
    roster: Roster,
    store: StatementStore,
    subject: VersionSubject,
    rule_id: str,
    until: datetime,
    reason: str,
    principal: str,
    private_key: Ed25519PrivateKey,
    now: datetime | None = None,
) -> Waiver:
    """Sign, verify, authorise and record a waiver; raise WaiverRefused (ledgered) when it is not granted."""
    now = now or utc_now()
    if not bundle.rule(rule_id).is_gate_rule:
        raise PolicyError(f"{rule_id} is not a release-gate rule (only forbid rules on promote can be waived)")
    if until <= now:
        raise GovernanceError(
            f"a waiver must end after it is granted: until {utc_timestamp(until)} is not after {utc_timestamp(now)}"
        )
    statement = Statement.new(
        WAIVE, _statement_subject(subject, rule_id, until), principal, valid_for=until - now, comment=reason, now=now
    )
    signed = sign(statement, private_key)
    try:
        store.submit(signed, roster, now)
    except StatementRefused as refusal:
        raise WaiverRefused(f"waiver refused: {refusal.reason}") from None
    decision = _authorise(bundle, roster, signed, subject)
    if not decision.allowed:
        _ledger(store.ledger, events.WaiverRefused, signed, bundle, decision)
        raise WaiverRefused("waiver refused: " + " ".join(decision.reasons))
    _ledger(store.ledger, events.WaiverGranted, signed, bundle, decision)
    return _waiver(signed)


def honoured_waivers(
    *, bundle: PolicyBundle, roster: Roster, store: StatementStore, subject: VersionSubject, now: datetime | None = None
) -> list[Waiver]:
    """The waivers for `subject` that the gate may apply at `now` (see the module docstring)."""
    now = now or utc_now()
    granted = {
        waiver.statement
        for waiver in store.ledger.events(events.WaiverGranted, model=subject.model, version=subject.version)
    }
    honoured = []
    for recorded in store.find(action=WAIVE, model=subject.model, version=subject.version, active_at=now):
        signed = recorded.signed
        if signed.digest not in granted or signed.statement.subject["rule"] not in bundle.rules:
            continue
        try:
            store.reverify(signed, roster, now)
        except StatementRefused:
            continue  # the store has ledgered why
        if _authorise(bundle, roster, signed, subject).allowed:
            honoured.append(_waiver(signed))
    return honoured


def _statement_subject(subject: VersionSubject, rule_id: str, until: datetime) -> dict[str, str]:
    return {"model": subject.model, "version": subject.version, "rule": rule_id, "until": utc_timestamp(until)}


def _authorise(bundle: PolicyBundle, roster: Roster, signed: SignedStatement, subject: VersionSubject) -> AuthzDecision:
    statement = signed.statement
    context = waiver_context(
        bundle, statement.subject["rule"], statement.issued_at, parse_utc(statement.subject["until"])
    )
    return authorize(bundle, roles_of(roster), statement.principal, WAIVE, subject, context)


def _ledger(
    ledger: Ledger,
    decided: type[events.WaiverDecided],
    signed: SignedStatement,
    bundle: PolicyBundle,
    decision: AuthzDecision,
) -> None:
    subject = signed.statement.subject
    ledger.append(
        decided(
            actor=signed.statement.principal,
            model=subject["model"],
            version=subject["version"],
            rule=subject["rule"],
            until=subject["until"],
            statement=signed.digest,
            policy=bundle.digest,
            allowed=decision.allowed,
            rules=tuple(decision.rules),
            reasons=tuple(decision.reasons),
        )
    )


def _waiver(signed: SignedStatement) -> Waiver:
    statement = signed.statement
    return Waiver(
        model=statement.subject["model"],
        version=statement.subject["version"],
        rule=statement.subject["rule"],
        until=parse_utc(statement.subject["until"]),
        granted_by=statement.principal,
        granted_at=statement.issued_at,
        reason=statement.comment,
        statement_digest=signed.digest,
    )
