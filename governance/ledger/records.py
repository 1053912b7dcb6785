"""Ledger entries as hashed records: an event's fields validated, and the canonical bytes the chain hashes.

Entry hash = SHA-256 of the canonical JSON (RFC 8785) of the record

    {"entry": {"action", "actor", "digests", "facts" (only when not empty), "subject", "ts"},
     "payload_digest": <sha256 hex of the payload's canonical JSON>,
     "prev_hash": <entry hash of the previous entry, 64 zeros for the first>,
     "seq": <1-based sequence number>}

The hash covers the payload's digest, not the payload, so retention can drop payloads and
the chain still verifies. Facts (state that decisions depend on, see `governance.events`)
are hashed with the entry and never expire. `content` stores the canonical bytes of "entry"; "entry" sorts
before the other keys, so the record is `content` spliced into a fixed template (`RECORD`) and
`verify()` hashes stored bytes without parsing JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from typing import Any, TypedDict

from governance.digests import canonical_json
from governance.errors import GovernanceError

GENESIS = "0" * 64
MAX_PAYLOAD_BYTES = 16_384
# The canonical JSON of a record: content, payload digest, previous entry hash (as bytes) and seq, in that order.
RECORD = b'{"entry":%b,"payload_digest":"%b","prev_hash":"%b","seq":%d}'
HASHED_FIELDS = ("action", "actor", "digests", "facts", "subject", "ts")

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_EVENT_FIELDS = {"actor", "action", "subject", "digests", "facts", "payload"}


class LedgerError(GovernanceError):
    """A ledger operation was refused: bad event, unknown entry or size, unreadable store."""


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    ts: str
    actor: str
    action: str
    subject: dict
    digests: dict
    payload: dict | None  # None once retention expired it
    payload_digest: str
    prev_hash: str
    entry_hash: str
    facts: dict = field(default_factory=dict)  # never expired: see governance.events

    def to_dict(self) -> dict:
        return asdict(self)


class ValidatedEvent(TypedDict):
    """An event's fields as checked by `validated`, its payload as canonical bytes with their digest."""

    actor: str
    action: str
    subject: dict[str, Any]
    digests: dict[str, str]
    facts: dict[str, Any]
    payload_bytes: bytes
    payload_digest: str


def entry_content(fields: Mapping[str, Any]) -> bytes:
    """Canonical JSON of an entry's hashed fields; `facts` only when an entry has some (older entries have none)."""
    return canonical_json({name: fields[name] for name in HASHED_FIELDS if name != "facts" or fields.get(name)})


def record_bytes(content: bytes, payload_digest: str, prev_hash: str, seq: int) -> bytes:
    """Canonical JSON of an entry's hashed record (see the module docstring)."""
    return RECORD % (content, payload_digest.encode(), prev_hash.encode(), seq)


# --- event validation --------------------------------------------------------------------


def _fail(where: str, message: str) -> LedgerError:
    return LedgerError(f"{where}: {message}")


def _check_strings(value: Any, where: str, field: str) -> None:
    """PostgreSQL's JSON cannot hold NUL characters; refuse them on every backend alike."""
    if isinstance(value, str):
        if "\x00" in value:
            raise _fail(where, f"field {field!r} contains a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, where, field)
            _check_strings(item, where, field)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_strings(item, where, field)


def _canonical(value: Any, where: str, field: str) -> bytes:
    _check_strings(value, where, field)
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise _fail(where, f"field {field!r} is not plain JSON: {exc}") from None


def validated(event: Any, where: str) -> ValidatedEvent:
    """The event's fields checked, with its payload canonicalised; raises LedgerError naming the field."""
    if not isinstance(event, dict):
        raise _fail(where, f"must be a dict, not {type(event).__name__}")
    unknown = set(event) - _EVENT_FIELDS
    if unknown:
        raise _fail(where, f"unknown field(s) {sorted(unknown)} (allowed: {sorted(_EVENT_FIELDS)})")
    actor, action = event.get("actor"), event.get("action")
    subject, digests, facts = event.get("subject"), event.get("digests") or {}, event.get("facts") or {}
    payload = {} if event.get("payload") is None else event["payload"]
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 200:
        raise _fail(where, f"field 'actor' must be a principal name or 'system:<component>', got {actor!r}")
    if not isinstance(action, str) or not _ACTION.match(action):
        raise _fail(where, f"field 'action' must be dotted lowercase like 'concern.event', got {action!r}")
    if not isinstance(subject, dict) or not isinstance(subject.get("model"), str) or not subject["model"]:
        raise _fail(where, "field 'subject' must be a dict with a non-empty string 'model'")
    if "version" in subject and not isinstance(subject["version"], str):
        raise _fail(where, f"field 'subject.version' must be a string, got {subject['version']!r}")
    if not isinstance(digests, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _HEX64.match(v) for k, v in digests.items()
    ):
        raise _fail(where, "field 'digests' must map names to lowercase SHA-256 hex digests")
    if not isinstance(payload, dict):
        raise _fail(where, f"field 'payload' must be a dict, not {type(payload).__name__}")
    if not isinstance(facts, dict):
        raise _fail(where, f"field 'facts' must be a dict, not {type(facts).__name__}")
    _canonical(facts, where, "facts")
    payload_bytes = _canonical(payload, where, "payload")
    if len(payload_bytes) > MAX_PAYLOAD_BYTES:
        raise _fail(
            where,
            f"field 'payload' is {len(payload_bytes)} bytes; keep payloads under "
            f"{MAX_PAYLOAD_BYTES} bytes of facts and put digests of larger evidence in 'digests'",
        )
    _canonical(subject, where, "subject")
    _check_strings(actor, where, "actor")
    _check_strings(digests, where, "digests")
    return {
        "actor": actor,
        "action": action,
        "subject": subject,
        "digests": digests,
        "facts": facts,
        "payload_bytes": payload_bytes,
        "payload_digest": sha256(payload_bytes).hexdigest(),
    }


# --- reading an entry back -----------------------------------------------------------------


def _without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object of the hashed content, refused when a key repeats: the ledger never writes one, and SQLite's
    derived columns read the first of two keys where Python reads the last (a date or action seen by queries
    would differ from the one acted on). About 2 us more per entry read."""
    fields = dict(pairs)
    if len(fields) != len(pairs):
        repeated = sorted({key for key, _ in pairs if sum(1 for k, _ in pairs if k == key) > 1})
        raise ValueError(f"the key(s) {repeated} appear twice in its content")
    return fields


def entry_from_row(row: Sequence[Any], checked: bool | str) -> LedgerEntry:
    """An entry as stored, from a row (seq, content, payload, payload_digest, entry_hash, prev_hash) whose
    content and payload are bytes; when `checked`, refused if its payload or fields no longer hash to what the
    chain recorded (a row edited in the database; the whole chain is `verify`'s to check, this the entry itself).
    `checked="facts"` refuses altered fields but reads an altered payload as gone: for decisions that rest on
    facts and digests only, so that an edited detail cannot stop them (verify still names it)."""
    seq, content, payload, payload_digest, entry_hash, prev_hash = row
    if checked == "facts" and payload is not None and sha256(payload).hexdigest() != payload_digest:
        payload = None
    if checked:
        if payload is not None and sha256(payload).hexdigest() != payload_digest:
            raise LedgerError(
                f"entry {seq}: its payload does not hash to the digest the chain recorded; run `govern ledger verify`"
            )
        if sha256(record_bytes(content, payload_digest, prev_hash or GENESIS, seq)).hexdigest() != entry_hash:
            raise LedgerError(f"entry {seq}: its fields do not hash to its entry hash; run `govern ledger verify`")
    try:
        fields = json.loads(content, object_pairs_hook=_without_duplicate_keys)
        return LedgerEntry(
            seq=seq,
            ts=fields["ts"],
            actor=fields["actor"],
            action=fields["action"],
            subject=fields["subject"],
            digests=fields["digests"],
            facts=fields.get("facts", {}),
            payload=None if payload is None else json.loads(payload),
            payload_digest=payload_digest,
            prev_hash=prev_hash or GENESIS,
            entry_hash=entry_hash,
        )
    except (TypeError, ValueError, KeyError, RecursionError) as exc:  # RecursionError: nested deeper than any entry
        raise LedgerError(f"entry {seq} is unreadable ({exc!r:.200}); run `govern ledger verify`") from None
