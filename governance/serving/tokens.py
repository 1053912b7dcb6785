"""Bearer tokens of the scoring API, kept as SHA-256 digests of their secrets in the governance database.

A token reads `gvt_<id>_<secret>`: the id finds its row, the secret's digest must match (compared in constant
time). A secret is 32 random bytes, so a fast digest is enough: there is no password to guess. The secret is
shown once, when created, and stored nowhere. Issuing and revoking are ledgered (ApiTokenIssued, ApiTokenRevoked).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from hashlib import sha256

from sqlalchemy import Column, MetaData, String, Table, insert, select, update

from governance import events
from governance.db import engine_for
from governance.errors import GovernanceError
from governance.ledger import Ledger
from governance.migrations import require_current
from governance.timestamps import utc_timestamp

PREFIX = "gvt"
ALL_MODELS = "*"  # the ledger subject of a token: it opens the API, not one model

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
        with self.engine.begin() as conn:
            conn.execute(
                insert(api_tokens).values(
                    token_id=token_id,
                    name=name,
                    secret_sha256=_digest(secret),
                    created_by=created_by,
                    created_at=utc_timestamp(),
                )
            )
        self.ledger.append(events.ApiTokenIssued(actor=created_by, model=ALL_MODELS, token_id=token_id, name=name))
        return f"{PREFIX}_{token_id}_{secret}"

    def revoke(self, token_id: str, revoked_by: str) -> None:
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utc_timestamp())
            ).rowcount
        if not changed:
            raise GovernanceError(f"there is no active API token {token_id!r} (`govern token list` shows them)")
        self.ledger.append(events.ApiTokenRevoked(actor=revoked_by, model=ALL_MODELS, token_id=token_id))

    def list(self) -> list[TokenInfo]:
        columns = [c for c in api_tokens.c if c.name != "secret_sha256"]
        with self.engine.connect() as conn:
            return [
                TokenInfo(**row) for row in conn.execute(select(*columns).order_by(api_tokens.c.created_at)).mappings()
            ]

    def active_digests(self) -> dict[str, str]:
        """token id -> secret digest of every token not revoked."""
        query = select(api_tokens.c.token_id, api_tokens.c.secret_sha256).where(api_tokens.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return {token_id: digest for token_id, digest in conn.execute(query)}


def token_matches(token: str, active: dict[str, str]) -> bool:
    """Whether `token` is one of the active tokens (by id, then its secret's digest in constant time)."""
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    expected = active.get(token_id) if prefix == PREFIX else None
    return expected is not None and hmac.compare_digest(expected, _digest(secret))
