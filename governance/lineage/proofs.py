"""Checking a ledger entry offline: from its fields and an inclusion proof alone, no database.

An entry (as `LedgerEntry.to_dict()` gives it) must hash to its `entry_hash`,
its payload (unless retention expired it) to its `payload_digest`, and the
inclusion proof must lead from that hash to the root of the tree of `size`
entries that a signed checkpoint vouches for.
"""

from __future__ import annotations

from typing import Any

from governance.digests import canonical_json, sha256_hex
from governance.ledger.merkle import InclusionProof
from governance.ledger.records import entry_content, record_bytes


def entry_hash_of(entry: dict[str, Any]) -> str:
    """The SHA-256 the ledger chains for this entry (see governance.ledger.records)."""
    content = entry_content(entry)
    return sha256_hex(record_bytes(content, entry["payload_digest"], entry["prev_hash"], entry["seq"]))


def altered(entry: dict[str, Any]) -> str | None:
    """Why this entry's fields or payload no longer hash to what it records; None when they do."""
    seq = entry.get("seq")
    try:
        if entry_hash_of(entry) != entry["entry_hash"]:
            return f"entry {seq}: its fields do not hash to its entry_hash"
        payload = entry["payload"]
        if payload is not None and sha256_hex(canonical_json(payload)) != entry["payload_digest"]:
            return f"entry {seq}: its payload does not hash to its payload_digest"
    except (KeyError, TypeError, ValueError) as exc:
        return f"entry {seq}: malformed ({exc!r})"
    return None


def entry_problem(entry: dict[str, Any], path: list[str], size: int, root: str) -> str | None:
    """Why this entry or its proof does not verify against (size, root); None when both do."""
    problem = altered(entry)
    if problem:
        return problem
    seq: Any = entry.get("seq")  # as read; InclusionProof refuses what is not a sequence number
    try:
        proof = InclusionProof(seq=seq, size=size, entry_hash=entry["entry_hash"], path=tuple(path), root=root)
    except (KeyError, TypeError, ValueError) as exc:
        return f"entry {seq}: malformed ({exc!r})"
    if not proof.verify():
        return f"entry {seq}: its inclusion proof does not lead to the root of the first {size} entries"
    return None
