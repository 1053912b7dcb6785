"""The statement store: where signed statements are verified, recorded and found again.

`submit` accepts a statement only if its principal is in the roster, the
signature verifies with that principal's roster key, it has not expired, it was
not issued in the future (beyond MAX_CLOCK_SKEW) and its nonce was never used
before (a unique constraint, so a replay loses even against a concurrent
submit). `reverify` re-checks a recorded statement at the time it is relied on,
against the roster of that moment: a removed principal or a rotated key stops
counting. Re-verifying a recorded statement is not a replay.

Ledger: every refusal appends `StatementRefused` and every accepted statement
appends `StatementRecorded` (actor = the principal, subject = the statement's
subject, digests = statement and roster), so that the ledger holds the digest of
every statement the store ever accepted or refused. Callers add their domain
event (e.g. `ApprovalGranted`) once they have also authorised the statement.
The row is committed before its ledger entry is appended; a statement whose
entry is missing (a crash in between) is refused by `reverify` rather than
trusted, and its nonce stays spent.

Authorisation (may this principal approve this version?) is not decided here:
that is the Cedar policies' job, with the verified statement as input.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.exc import IntegrityError

from governance import events
from governance.db import engine_for, inserted_id, write_transaction
from governance.errors import GovernanceError
from governance.ledger import Ledger, LedgerEntry
from governance.migrations import require_current
from governance.settings import Settings
from governance.timestamps import MAX_CLOCK_SKEW, utc_now, utc_timestamp
from governance.trust.roster import Principal, Roster
from governance.trust.statements import SignedStatement, canonical_signature, signing_bytes

_LOCK = "signed_statements"

_metadata = MetaData()
_statements = Table(
    "signed_statements",
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("nonce", String(64), nullable=False, unique=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("action", String(32), nullable=False),
    Column("principal", String(32), nullable=False),
    Column("model", String(64), nullable=False),
    Column("version", String(128)),
    Column("issued_at", String(27), nullable=False),
    Column("expires_at", String(27), nullable=False),
    Column("recorded_at", String(27), nullable=False),
    Column("roster_version", Integer, nullable=False),
    Column("roster_digest", String(64), nullable=False),
    Column("ledger_entry_hash", String(64)),
    Column("document", Text, nullable=False),
    Index("ix_signed_statements_subject", "model", "version", "action"),
)


class StatementRefused(GovernanceError):
    """A statement was not accepted (or no longer verifies). `reason` says why, for people."""

    def __init__(self, signed: SignedStatement, reason: str) -> None:
        statement = signed.statement
        super().__init__(f"{statement.action} statement by {statement.principal!r} refused: {reason}")
        self.reason = reason
        self.digest = signed.digest
        self.ledger_entry: LedgerEntry | None = None


@dataclass(frozen=True)
class RecordedStatement:
    """A statement as the store holds it."""

    signed: SignedStatement
    seq: int
    recorded_at: str
    roster_version: int
    roster_digest: str
    ledger_entry_hash: str | None

    @property
    def digest(self) -> str:
        return self.signed.digest


def statement_row(signed: SignedStatement, roster: Roster, recorded_at: datetime) -> dict:
    """The store's row for a statement checked against `roster`: its columns are query caches of the document."""
    statement = signed.statement
    return {
        "nonce": statement.nonce,
        "digest": signed.digest,
        "action": statement.action,
        "principal": statement.principal,
        "model": statement.subject["model"],
        "version": statement.subject.get("version"),
        "issued_at": utc_timestamp(statement.issued_at),
        "expires_at": utc_timestamp(statement.expires_at),
        "recorded_at": utc_timestamp(recorded_at),
        "roster_version": roster.version,
        "roster_digest": roster.digest,
        "document": signed.to_json(),
    }


@dataclass(frozen=True)
class Accepted:
    """A statement the store accepted: its row (None once deleted or altered) and the ledger's record of it (None
    when its append was lost)."""

    row: RecordedStatement | None
    entry: events.StatementRecorded | None

    @property
    def digest(self) -> str:
        return self.row.digest if self.row is not None else self.entry.statement if self.entry else ""

    @property
    def issued(self) -> str:
        """When it was signed (as its row says), or when the ledger recorded it (its row gone)."""
        if self.row is not None:
            return utc_timestamp(self.row.signed.statement.issued_at)
        return self.entry.ts if self.entry else ""


class StatementStore:
    """Signed statements in the governance database (settings.ledger_url)."""

    def __init__(self, url: str, ledger: Ledger) -> None:
        self.engine = engine_for(url)
        self.ledger = ledger
        require_current(self.engine, "governance")

    @classmethod
    def for_settings(cls, settings: Settings) -> StatementStore:
        return cls(settings.ledger_url, Ledger.for_settings(settings))

    def submit(self, signed: SignedStatement, roster: Roster, now: datetime | None = None) -> RecordedStatement:
        """Verify and record a new statement; raise StatementRefused (and ledger it) otherwise."""
        now = now or utc_now()
        try:
            _check_authentic(signed, roster, now)
            _check_not_future(signed, now)
            seq = self._insert(signed, roster, now)
        except StatementRefused as refusal:
            self._refused(refusal, signed, roster)
            raise
        entry = self.ledger.append(
            events.StatementRecorded(
                actor=signed.statement.principal,
                **_subject(signed),
                statement=signed.digest,
                roster=roster.digest,
                statement_action=signed.statement.action,
                roster_version=roster.version,
            )
        )
        with write_transaction(self.engine, _LOCK) as conn:
            conn.execute(update(_statements).where(_statements.c.seq == seq).values(ledger_entry_hash=entry.entry_hash))
        recorded = self._recorded_by_nonce(signed.statement.nonce)
        assert recorded is not None, "recorded in this call"
        return recorded

    def reverify(self, signed: SignedStatement, roster: Roster, now: datetime | None = None) -> RecordedStatement:
        """Check again, now, that a recorded statement still verifies; raise StatementRefused otherwise."""
        now = now or utc_now()
        try:
            recorded = self._recorded_by_nonce(signed.statement.nonce)
            if recorded is None:
                raise StatementRefused(signed, "not recorded in the statement store (submit it first)")
            if recorded.digest != signed.digest:
                raise StatementRefused(
                    signed,
                    f"differs from the statement recorded with nonce {signed.statement.nonce} "
                    f"(recorded digest {recorded.digest})",
                )
            if recorded.ledger_entry_hash is None:
                raise StatementRefused(
                    signed, "recorded without its ledger entry (its submit was interrupted); sign a new statement"
                )
            _check_authentic(signed, roster, now)
        except StatementRefused as refusal:
            self._refused(refusal, signed, roster)
            raise
        return recorded

    def find(
        self,
        *,
        action: str | None = None,
        model: str | None = None,
        version: str | None = None,
        principal: str | None = None,
        active_at: datetime | None = None,
        issued_after: str = "",
    ) -> list[RecordedStatement]:
        """Recorded statements matching every given filter, newest first.

        The filters select rows by their columns and keep those whose signed document says the same (a column is a
        cache: a relabelled row is not found as what its column says). `active_at` keeps only statements not yet
        expired at that moment, `issued_after` (a UTC timestamp) only those issued after it, by their column.
        Found is not verified: call `reverify` on the one you rely on.
        """
        filters = {"action": action, "model": model, "version": version, "principal": principal}
        query = select(_statements).order_by(_statements.c.seq.desc())
        for column, value in filters.items():
            if value is not None:
                query = query.where(_statements.c[column] == value)
        if active_at is not None:
            query = query.where(_statements.c.expires_at > utc_timestamp(active_at))
        if issued_after:
            query = query.where(_statements.c.issued_at > issued_after)
        with self.engine.connect() as conn:
            found = [_from_row(row) for row in conn.execute(query).mappings()]
        return [r for r in found if _says(r.signed, filters)]

    def ever_recorded(
        self, action: str, model: str, version: str | None = None, since_seq: int = 0, issued_after: str = ""
    ) -> list[Accepted]:
        """Every statement the store accepted as an `action` on `model` (and `version`), with its row where the row
        reads and its document says so, and the ledger's record of accepting it (`events.StatementRecorded`, ledgered
        after `since_seq`), which stands for a row deleted or altered since. For what must count when it exists (a
        rejection, a disable): no edit of the statements table hides one the ledger recorded. `issued_after` leaves
        out rows whose column dates them no later (a row whose column was set back is still found by its ledger
        record, when that came after `since_seq`)."""
        rows = {r.digest: r for r in self.find(action=action, model=model, version=version, issued_after=issued_after)}
        ledgered: dict[str, events.StatementRecorded] = {}
        for entry in self.ledger.history(
            events.StatementRecorded, model=model, version=version, since_seq=since_seq, checked="facts"
        ):
            if entry.statement_action == action:
                ledgered.setdefault(entry.statement, entry)  # the first: a later copy is appended by hand
        wanted = {"action": action, "model": model, "version": version}
        for digest in ledgered.keys() - rows.keys():
            recorded = self.by_digest(digest)
            if recorded is not None and _says(recorded.signed, wanted):
                rows[digest] = recorded
        return [Accepted(rows.get(d), ledgered.get(d)) for d in rows.keys() | ledgered.keys()]

    def by_digest(self, digest: str) -> RecordedStatement | None:
        """The recorded statement with this digest, unverified (check it with `authentic` or `reverify`)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_statements).where(_statements.c.digest == digest)).mappings().first()
        if row is None:
            return None
        recorded = _from_row(row)
        return recorded if recorded.digest == digest else None  # the document, not the column, names it

    def _insert(self, signed: SignedStatement, roster: Roster, now: datetime) -> int:
        try:
            with write_transaction(self.engine, _LOCK) as conn:
                return inserted_id(conn.execute(insert(_statements).values(**statement_row(signed, roster, now))))
        except IntegrityError:  # the unique nonce: the one guard against replays, concurrent or not
            raise StatementRefused(signed, self._replay_reason(signed)) from None

    def _refused(self, refusal: StatementRefused, signed: SignedStatement, roster: Roster) -> StatementRefused:
        refusal.ledger_entry = self.ledger.append(
            events.StatementRefused(
                actor=signed.statement.principal,
                **_subject(signed),
                statement=signed.digest,
                roster=roster.digest,
                statement_action=signed.statement.action,
                reason=refusal.reason,
            )
        )
        return refusal

    def _replay_reason(self, signed: SignedStatement) -> str:
        earlier = self._recorded_by_nonce(signed.statement.nonce)
        if earlier is not None and earlier.digest == signed.digest:
            return f"replay: this statement was already recorded at {earlier.recorded_at}"
        return f"replay: nonce {signed.statement.nonce} was already used by another statement"

    def _recorded_by_nonce(self, nonce: str) -> RecordedStatement | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_statements).where(_statements.c.nonce == nonce)).mappings().first()
        return _from_row(row) if row is not None else None


def _check_authentic(signed: SignedStatement, roster: Roster, now: datetime) -> Principal:
    """Principal in the roster, signature by their roster key, not expired."""
    statement = signed.statement
    principal = roster.principals.get(statement.principal)
    if principal is None:
        raise StatementRefused(
            signed, f"principal {statement.principal!r} is not in the roster (version {roster.version}, {roster.path})"
        )
    if not canonical_signature(signed.signature):
        raise StatementRefused(signed, "the signature is not base64 of a 64-byte Ed25519 signature")
    signature = base64.b64decode(signed.signature)
    try:
        principal.public_key.verify(signature, signing_bytes(statement))
    except InvalidSignature:
        raise StatementRefused(
            signed,
            f"the signature does not verify with {principal.name!r}'s public key in roster version "
            f"{roster.version}: it was made with another key, or the statement was changed after signing",
        ) from None
    if now >= statement.expires_at:
        raise StatementRefused(signed, f"expired at {utc_timestamp(statement.expires_at)} (now {utc_timestamp(now)})")
    return principal


def authentic(signed: SignedStatement, roster: Roster) -> Principal:
    """The signer, if they are in `roster` and the signature verifies with their roster key; else StatementRefused.
    Expiry is not checked: this asks whether a past statement was really made, not whether it may be used now."""
    return _check_authentic(signed, roster, signed.statement.issued_at)


def _check_not_future(signed: SignedStatement, now: datetime) -> None:
    issued = signed.statement.issued_at
    if issued > now + MAX_CLOCK_SKEW:
        raise StatementRefused(
            signed,
            f"issued at {utc_timestamp(issued)}, more than {int(MAX_CLOCK_SKEW.total_seconds())} s "
            f"after this machine's clock ({utc_timestamp(now)}); check the signer's clock",
        )


def _says(signed: SignedStatement, filters: Mapping[str, str | None]) -> bool:
    """Whether the signed document itself has these fields (None: any)."""
    statement = signed.statement
    actual = {
        "action": statement.action,
        "principal": statement.principal,
        "model": statement.subject.get("model"),
        "version": statement.subject.get("version"),
    }
    return all(value is None or actual[name] == value for name, value in filters.items())


def _from_row(row: Mapping) -> RecordedStatement:
    return RecordedStatement(
        signed=SignedStatement.from_json(row["document"], source=f"signed_statements row {row['seq']}"),
        seq=row["seq"],
        recorded_at=row["recorded_at"],
        roster_version=row["roster_version"],
        roster_digest=row["roster_digest"],
        ledger_entry_hash=row["ledger_entry_hash"],
    )


def _subject(signed: SignedStatement) -> dict[str, Any]:
    """The statement's subject as the statement events declare it (`events.StatementEvent`)."""
    declared = {f.name for f in fields(events.StatementEvent)}
    subject = signed.statement.subject
    unknown = sorted(set(subject) - declared)
    if unknown:
        raise StatementRefused(signed, f"its subject has field(s) {unknown} no statement takes")
    return dict(subject)
