"""Bearer tokens of the scoring API, kept as SHA-256 digests of their secrets in the governance database.

A token reads `gvt_<id>_<secret>`: the id finds its row, the secret's digest must match (compared in constant
time). A secret is 32 random bytes, so a fast digest is enough: there is no password to guess. The secret is
shown once, when created, and stored nowhere. Issuing and revoking are ledgered (ApiTokenIssued, ApiTokenRevoked).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from hashlib import sha256

from sqlalchemy import Column, MetaData, String, Table, insert, select, update

from governance import events
from governance.db import engine_for
from governance.digests import digest_of
from governance.errors import GovernanceError
from governance.ledger import Ledger
from governance.migrations import require_current
from governance.timestamps import utc_timestamp

log = logging.getLogger(__name__)

PREFIX, SESSION = "gvt", "gvs"
SESSION_SECONDS = 8 * 3600  # a console sign-in lasts a working day

metadata = MetaData()
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
)


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    name: str
    created_by: str
    created_at: str
    revoked_at: str | None
    problem: str | None = None  # why an active row does not count: it disagrees with the ledger


@dataclass(frozen=True)
class _Ledgered:
    """What the ledger says of the tokens: the first issuing entry of each id, and the ids it revoked."""

    issued: dict[str, events.ApiTokenIssued]
    revoked: dict[str, int]

    def problem(self, token_id: str, digest: str) -> str | None:
        """Why an active row with this id and digest does not count; None when the ledger backs it."""
        issued = self.issued.get(token_id)
        if issued is None:
            return f"no {events.ApiTokenIssued.action} entry in the ledger issues it (the row was written outside `govern token`)"
        if issued.secret is None:
            return f"ledger entry {issued.seq} issued it without binding its secret's digest: issue a new token"
        if not hmac.compare_digest(issued.secret, digest):
            return f"its secret's digest is not the one ledger entry {issued.seq} issued (the row was rewritten)"
        if token_id in self.revoked:
            return f"ledger entry {self.revoked[token_id]} revoked it, but its row says active (the row was edited)"
        return None


def _digest(secret: str) -> str:
    return sha256(secret.encode()).hexdigest()


class TokenStore:
    def __init__(self, url: str, ledger: Ledger) -> None:
        self.engine = engine_for(url)
        self.ledger = ledger
        require_current(self.engine, "governance")

    @classmethod
    def for_settings(cls, settings) -> TokenStore:
        return cls(settings.ledger_url, Ledger.for_settings(settings))

    def create(self, name: str, created_by: str) -> str:
        """A new token (shown once: only its digest is kept)."""
        if not name.strip():
            raise GovernanceError("a token needs a name saying who or what uses it (--name)")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        digest = _digest(secret)
        # The ledger first: until its row exists the token is unknown, never a row the ledger does not back.
        self.ledger.append(
            events.ApiTokenIssued(
                actor=created_by, model=events.ALL_MODELS, token_id=token_id, name=name, secret=digest
            )
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert(api_tokens).values(
                    token_id=token_id,
                    name=name,
                    secret_sha256=digest,
                    created_by=created_by,
                    created_at=utc_timestamp(),
                )
            )
        return f"{PREFIX}_{token_id}_{secret}"

    def revoke(self, token_id: str, revoked_by: str) -> None:
        # The row first: a revoked row is refused at once, whatever the ledger says.
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utc_timestamp())
            ).rowcount
        if not changed:
            raise GovernanceError(f"there is no active API token {token_id!r} (`govern token list` shows them)")
        self.ledger.append(events.ApiTokenRevoked(actor=revoked_by, model=events.ALL_MODELS, token_id=token_id))

    def list(self) -> list[TokenInfo]:
        """Every token's row, each active one with why it does not count if the ledger does not back it."""
        ledgered = self._ledgered()
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_tokens).order_by(api_tokens.c.created_at)).mappings().all()
        return [
            TokenInfo(
                **{k: v for k, v in row.items() if k != "secret_sha256"},
                problem=None if row["revoked_at"] else ledgered.problem(row["token_id"], row["secret_sha256"]),
            )
            for row in rows
        ]

    def active_digests(self) -> dict[str, str]:
        """token id -> secret digest of every active token the ledger backs. Each active row it does not back is
        refused, logged and ledgered once (`events.ApiTokenRefused`)."""
        query = select(api_tokens.c.token_id, api_tokens.c.secret_sha256).where(api_tokens.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            rows = dict(conn.execute(query).tuples().all())
        ledgered = self._ledgered()
        refused = {t: p for t, d in rows.items() if (p := ledgered.problem(t, d))}
        if refused:
            self._record_refused(refused)
        return {t: d for t, d in rows.items() if t not in refused}

    def _ledgered(self) -> _Ledgered:
        issued: dict[str, events.ApiTokenIssued] = {}
        for entry in self.ledger.events(events.ApiTokenIssued, model=events.ALL_MODELS):
            issued.setdefault(entry.token_id, entry)
        revoked = {e.token_id: e.seq for e in self.ledger.events(events.ApiTokenRevoked, model=events.ALL_MODELS)}
        return _Ledgered(issued, revoked)

    def _record_refused(self, refused: dict[str, str]) -> None:
        seen = {e.incident for e in self.ledger.events(events.ApiTokenRefused, model=events.ALL_MODELS)}
        fresh = []
        for token_id, problem in refused.items():
            incident = digest_of({"token_id": token_id, "problem": problem})
            if incident not in seen:
                log.warning("API token %s refused: %s", token_id, problem)
                fresh.append(
                    events.ApiTokenRefused(
                        actor="system:serving",
                        model=events.ALL_MODELS,
                        token_id=token_id,
                        incident=incident,
                        problem=problem,
                    )
                )
        if fresh:
            self.ledger.append_many(fresh)


def console_session(token: str, active: dict[str, str], now: float) -> str | None:
    """A console session for an active token: `gvs_<id>_<expiry>_<mac>`, the MAC keyed by the token's stored
    digest. It names the token without holding it, so a copied cookie cannot call the API, and it ends at its
    expiry (SESSION_SECONDS) or when the token is revoked. None if the token is not active."""
    if not token_matches(token, active):
        return None
    token_id = token.split("_")[1]
    expires = int(now) + SESSION_SECONDS
    return f"{SESSION}_{token_id}_{expires}_{_session_mac(active[token_id], token_id, expires)}"


def session_matches(session: str, active: dict[str, str], now: float) -> bool:
    """Whether `session` is an unexpired console session of an active token."""
    prefix, token_id, expires, mac = (session.split("_") + ["", "", "", ""])[:4]
    digest = active.get(token_id) if prefix == SESSION and expires.isdigit() else None
    if digest is None or int(expires) <= now:
        return False
    return hmac.compare_digest(mac, _session_mac(digest, token_id, int(expires)))


def _session_mac(digest: str, token_id: str, expires: int) -> str:
    return hmac.new(bytes.fromhex(digest), f"{token_id}_{expires}".encode(), sha256).hexdigest()


def token_matches(token: str, active: dict[str, str]) -> bool:
    """Whether `token` is one of the active tokens (by id, then its secret's digest in constant time)."""
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    expected = active.get(token_id) if prefix == PREFIX else None
    return expected is not None and hmac.compare_digest(expected, _digest(secret))
