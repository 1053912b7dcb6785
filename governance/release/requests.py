"""Who asked for a candidate version: a signed request, verified where it is used.

`govern train` (or anyone holding a roster key) signs a `request` statement bound to one model version;
the statement store verifies it, Cedar decides whether that principal may `train` the model, and the
ledger records `events.CandidateRequested`. Nothing else names a requester: a run tag, a ledger entry
whose statement is missing, altered, signed by someone else or by a key the roster no longer holds, is
a cache that counts for nobody. A version nobody verifiably requested has an unknown requester, and
then two different approvers must approve it (policies/separation_of_duties.cedar), so launching a run
without a signed request never frees anyone to approve their own work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance import events
from governance.errors import GovernanceError
from governance.policy.authz import ModelSubject, VersionSubject, authorize, roles_of
from governance.release.services import Services
from governance.timestamps import parse_utc, utc_timestamp
from governance.trust.statements import Statement, sign
from governance.trust.store import StatementRefused, authentic

REQUEST = "request"
# A request is used when its run starts; a day covers a queue, not a week-old claim.
REQUEST_VALIDITY = timedelta(days=1)
UNKNOWN = "unknown"


class CandidateRequestRefused(GovernanceError):
    """A candidate request was not accepted (signature, roster, or Cedar's `train` rule); nothing was started."""


@dataclass(frozen=True)
class Requesters:
    """Who verifiably asked for a version, the ledger's request entries that count for nobody (why), and whom
    those entries name: a request whose statement row was deleted or altered may still be theirs."""

    verified: tuple[str, ...]
    unverified: tuple[str, ...]
    named: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return bool(self.verified)

    def describe(self) -> str:
        if self.verified:
            return ", ".join(self.verified)
        return f"{UNKNOWN} (no verified signed request: two different approvers must approve it)"


def request_candidate(
    services: Services,
    model: str,
    version: str,
    principal: str,
    private_key: Ed25519PrivateKey,
    comment: str = "",
    now: datetime | None = None,
) -> events.CandidateRequested:
    """Sign, verify, authorise (Cedar `train`) and ledger `principal`'s request for `version` of `model`."""
    signed = sign(
        Statement.new(
            REQUEST,
            {"model": model, "version": version},
            principal,
            valid_for=REQUEST_VALIDITY,
            comment=comment,
            now=now,
        ),
        private_key,
    )
    try:
        services.statements.submit(signed, services.roster, now)
    except StatementRefused as refusal:
        raise CandidateRequestRefused(f"request for {version} refused: {refusal.reason}") from None
    decision = authorize(services.policies, roles_of(services.roster), principal, "train", ModelSubject(model))
    if not decision.allowed:
        why = f"{principal} may not request a {model} candidate: {' '.join(decision.reasons)}"
        services.ledger.append(
            events.CandidateRefused(
                actor=principal,
                model=model,
                version=version,
                statement=signed.digest,
                policy=decision.policy_digest,
                reason=why,
            )
        )
        raise CandidateRequestRefused(why)
    requested = events.CandidateRequested(
        actor=principal, model=model, version=version, statement=signed.digest, policy=decision.policy_digest
    )
    entry = services.ledger.append(requested)
    return replace(requested, seq=entry.seq, ts=entry.ts, entry_hash=entry.entry_hash)


def requesters(services: Services, model: str, version: str) -> Requesters:
    """Everyone who verifiably requested `version`, checked now against the statement store and the roster."""
    verified, unverified, named = set(), [], set()
    registered = services.ledger.events(events.ModelRegistered, model=model, version=version)
    # A registration entry is unsigned and one version registers once: of several (one appended by a ledger
    # writer), each check takes the strictest, the first for lateness and the last for a request's expiry.
    trained_at = registered[0].seq if registered else None
    run_at = parse_utc(registered[-1].ts) if registered else None
    for requested in services.ledger.events(events.CandidateRequested, model=model, version=version):
        problem = _problem(services, requested, run_at) or _late(requested, trained_at)
        if problem is None:
            verified.add(requested.actor)
        else:
            unverified.append(f"ledger entry {requested.seq} names {requested.actor} as requester, but {problem}")
            named.add(requested.actor)
    return Requesters(tuple(sorted(verified)), tuple(unverified), tuple(sorted(named - verified)))


def version_subject(services: Services, model: str, version: str) -> VersionSubject:
    """The version as the release gate judges it when it runs again, and so as a waiver of its rules is judged:
    the risk tier and data scientists its model's config gives now, its requesters and its business owner. No
    ledger entry's copy of these counts: anyone who can write the ledger can append one."""
    governed = services.governed_model(model)
    asked = requesters(services, model, version)
    return VersionSubject(
        model,
        version,
        governed.risk_tier,
        tuple(governed.owners.data_scientists),
        asked.verified,
        governed.owners.business_owner,
        named_requesters=asked.named,
    )


def _late(requested: events.CandidateRequested, trained_at: int | None) -> str | None:
    """Why a request came too late to be the version's: it was ledgered after the version was trained (a request
    authorises a run before it starts; one signed afterwards would let its signer stand for whoever launched it)."""
    if trained_at is not None and requested.seq > trained_at:
        return f"it was ledgered after the version was trained (ledger entry {trained_at})"
    return None


def _problem(services: Services, requested: events.CandidateRequested, run_at: datetime | None) -> str | None:
    """Why this request entry names nobody (None when its signed statement verifies, was still valid at `run_at`
    when the version was trained (None: not yet) and Cedar lets its signer `train` the model, judged now: an entry
    appended for a request Cedar refused names nobody). An expired request authorises no run: a request whose run
    never registered a version would otherwise let whoever launches that partition later stand behind its
    signer."""
    recorded = services.statements.by_digest(requested.statement)
    if recorded is None:
        return f"no signed statement {requested.statement[:12]} is recorded"
    statement = recorded.signed.statement
    expected = {"model": requested.model, "version": requested.version}
    if statement.action != REQUEST or dict(statement.subject) != expected:
        return f"statement {requested.statement[:12]} is a {statement.action} of {dict(statement.subject)}"
    if statement.principal != requested.actor:
        return f"statement {requested.statement[:12]} was signed by {statement.principal}"
    try:
        authentic(recorded.signed, services.roster)
    except StatementRefused as refusal:
        return refusal.reason
    if run_at is not None and statement.expires_at < run_at:
        return (
            f"statement {requested.statement[:12]} expired at {utc_timestamp(statement.expires_at)}, before the "
            f"version was trained ({utc_timestamp(run_at)})"
        )
    roles = roles_of(services.roster)
    decision = authorize(services.policies, roles, statement.principal, "train", ModelSubject(requested.model))
    return None if decision.allowed else f"Cedar refuses {statement.principal}'s request: {' '.join(decision.reasons)}"
