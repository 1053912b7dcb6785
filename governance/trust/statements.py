"""Signed statements: how a person (or the system) says "I approve this", verifiably.

A statement binds one action to exactly one subject, e.g.

    approve   {"model", "version", "evidence_digest"}   (reject: the same)
    waive     {"model", "version", "rule", "until"}
    disable   {"model"}                                  (enable: the same)
    rollback  {"model", "version"}                       (version: the rollback target)
    request   {"model", "version"}                       (a candidate: who asked for this version)

and is signed with Ed25519 over its RFC 8785 canonical JSON, which carries a
`type` tag so that no other signed document of the project can pass for one.
The file form (`to_json`) is what people move around; parsing it is strict, so
the bytes that were signed are exactly the bytes that are verified.
Verification against the roster, expiry and replay is the store's job
(governance.trust.store), which records every refusal in the ledger.

No personal data: subjects hold identifiers and digests only, and the free-text
comment refuses things that look like an e-mail address or an account number.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.config import MODEL_NAME
from governance.digests import canonical_json, digest_of
from governance.errors import GovernanceError
from governance.timestamps import TIMESTAMP_PATTERN, parse_utc, utc_now, utc_timestamp
from governance.trust.roster import PRINCIPAL_NAME

STATEMENT_TYPE = "governance-assets/statement/v1"
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

ACTION_SUBJECTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "approve": ("model", "version", "evidence_digest"),
        "reject": ("model", "version", "evidence_digest"),
        "waive": ("model", "version", "rule", "until"),
        "disable": ("model",),
        "enable": ("model",),
        "rollback": ("model", "version"),
        "train": ("model",),
        "request": ("model", "version"),
    }
)
SUBJECT_FORMATS: Mapping[str, re.Pattern] = MappingProxyType(
    {
        "model": MODEL_NAME,
        "version": _TOKEN,
        "evidence_digest": _SHA256,
        "rule": _TOKEN,
        "until": TIMESTAMP_PATTERN,
    }
)
MAX_COMMENT_CHARS = 500
_LOOKS_PERSONAL = {
    "an e-mail address": re.compile(r"[^\s@]+@[^\s@]+\.[A-Za-z]{2,}"),
    "a long number (account, phone or ID number?)": re.compile(r"\d{9,}"),
}
_PAYLOAD_FIELDS = {"type", "action", "subject", "principal", "issued_at", "expires_at", "nonce", "comment"}
_MAX_FILE_CHARS = 64 * 1024


class StatementFormatError(GovernanceError):
    """A statement or statement file is malformed. The message names the source and field."""


@dataclass(frozen=True)
class Statement:
    """What a principal says, before signing. Times are aware UTC datetimes."""

    action: str
    subject: Mapping[str, str]
    principal: str
    issued_at: datetime
    expires_at: datetime
    nonce: str
    comment: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", MappingProxyType(dict(self.subject)))
        for moment in ("issued_at", "expires_at"):
            value = getattr(self, moment)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise StatementFormatError(f"statement field {moment!r}: expected an aware UTC datetime")
            object.__setattr__(self, moment, value.astimezone(UTC))
        _check_fields(self)

    @classmethod
    def new(
        cls,
        action: str,
        subject: Mapping[str, str],
        principal: str,
        *,
        valid_for: timedelta,
        comment: str = "",
        now: datetime | None = None,
    ) -> Statement:
        """A statement issued now with a fresh random nonce, valid for `valid_for`."""
        issued = now or utc_now()
        return cls(action, subject, principal, issued, issued + valid_for, secrets.token_hex(16), comment)

    def payload(self) -> dict[str, Any]:
        """The signed content."""
        return {
            "type": STATEMENT_TYPE,
            "action": self.action,
            "subject": dict(self.subject),
            "principal": self.principal,
            "issued_at": utc_timestamp(self.issued_at),
            "expires_at": utc_timestamp(self.expires_at),
            "nonce": self.nonce,
            "comment": self.comment,
        }

    @classmethod
    def from_payload(cls, payload: Any, source: str = "statement") -> Statement:
        if not isinstance(payload, dict) or set(payload) != _PAYLOAD_FIELDS:
            raise StatementFormatError(
                f"{source}: field 'statement': expected exactly the fields {sorted(_PAYLOAD_FIELDS)}"
            )
        if payload["type"] != STATEMENT_TYPE:
            raise StatementFormatError(
                f"{source}: field 'statement.type': expected {STATEMENT_TYPE!r}, got {payload['type']!r}"
            )
        times = {}
        for name in ("issued_at", "expires_at"):
            try:
                times[name] = parse_utc(payload[name])
            except ValueError as exc:
                raise StatementFormatError(f"{source}: field 'statement.{name}': {exc}") from None
        for name in ("action", "principal", "nonce", "comment"):
            if not isinstance(payload[name], str):
                raise StatementFormatError(f"{source}: field 'statement.{name}': expected text")
        if not isinstance(payload["subject"], dict):
            raise StatementFormatError(f"{source}: field 'statement.subject': expected a mapping")
        try:
            return cls(
                payload["action"],
                payload["subject"],
                payload["principal"],
                times["issued_at"],
                times["expires_at"],
                payload["nonce"],
                payload["comment"],
            )
        except StatementFormatError as exc:
            raise StatementFormatError(f"{source}: {exc}") from None


@dataclass(frozen=True)
class SignedStatement:
    """A statement and its Ed25519 signature (base64 of 64 bytes; checked when verified, not here)."""

    statement: Statement
    signature: str

    def document(self) -> dict[str, Any]:
        return {"statement": self.statement.payload(), "signature": self.signature}

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the canonical signed form: the statement's identity in the ledger."""
        return digest_of(self.document())

    def to_json(self) -> str:
        return json.dumps(self.document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "statement") -> SignedStatement:
        """Parse a statement file; `source` (e.g. the file name) prefixes every error."""
        if len(text) > _MAX_FILE_CHARS:
            raise StatementFormatError(f"{source}: larger than {_MAX_FILE_CHARS} characters; not a statement")
        try:
            document = json.loads(text, object_pairs_hook=_unique_keys)
        except ValueError as exc:
            raise StatementFormatError(f"{source}: not valid JSON: {exc}") from None
        except RecursionError:
            raise StatementFormatError(f"{source}: not valid JSON: nested deeper than any statement") from None
        if not isinstance(document, dict) or set(document) != {"statement", "signature"}:
            raise StatementFormatError(f"{source}: expected an object with exactly 'statement' and 'signature'")
        if not isinstance(document["signature"], str) or not canonical_signature(document["signature"]):
            raise StatementFormatError(f"{source}: field 'signature': expected the base64 of a 64-byte signature")
        return cls(Statement.from_payload(document["statement"], source), document["signature"])


def canonical_signature(text: str) -> bool:
    """Whether `text` is the one base64 spelling of a 64-byte signature. Base64 decoding ignores the unused bits
    before `==`, so one signature has 16 spellings; a statement's digest covers the spelling, and every replay
    check keys on the digest, so only the spelling `sign` writes is a statement."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 64 and base64.b64encode(raw).decode("ascii") == text


def signing_bytes(statement: Statement) -> bytes:
    return canonical_json(statement.payload())


def sign(statement: Statement, private_key: Ed25519PrivateKey) -> SignedStatement:
    signature = private_key.sign(signing_bytes(statement))
    return SignedStatement(statement, base64.b64encode(signature).decode("ascii"))


def _check_fields(statement: Statement) -> None:
    def bad(field: str, problem: str) -> StatementFormatError:
        return StatementFormatError(f"statement field {field!r}: {problem}")

    if statement.action not in ACTION_SUBJECTS:
        raise bad("action", f"unknown action {statement.action!r} (known: {', '.join(sorted(ACTION_SUBJECTS))})")
    expected = ACTION_SUBJECTS[statement.action]
    if set(statement.subject) != set(expected):
        raise bad(
            "subject",
            f"a {statement.action!r} statement binds exactly {list(expected)}, got {sorted(statement.subject)}",
        )
    for key, value in statement.subject.items():
        if not isinstance(value, str) or not SUBJECT_FORMATS[key].match(value):
            raise bad(f"subject.{key}", f"malformed value {value!r}")
    if not isinstance(statement.principal, str) or not PRINCIPAL_NAME.match(statement.principal):
        raise bad("principal", "not a principal name (2-32 characters of a-z, 0-9, '_' or '-')")
    if not isinstance(statement.nonce, str) or not _NONCE.match(statement.nonce):
        raise bad("nonce", "expected 16-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    if statement.expires_at <= statement.issued_at:
        raise bad("expires_at", "must be later than issued_at")
    _check_comment(statement.comment, bad)


def _check_comment(comment: Any, bad) -> None:
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise bad("comment", f"expected text of at most {MAX_COMMENT_CHARS} characters")
    if any(not ch.isprintable() and ch not in "\n\t" for ch in comment):
        raise bad("comment", "contains control characters")
    for what, pattern in _LOOKS_PERSONAL.items():
        if pattern.search(comment):
            raise bad("comment", f"looks like it contains {what}; statements must not carry personal data")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice")
        result[key] = value
    return result
