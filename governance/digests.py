"""Canonical JSON and SHA-256 digests: the one way the project hashes things.

Canonical JSON follows RFC 8785 (JSON Canonicalization Scheme): sorted keys, no
insignificant white space, fixed number formatting, UTF-8. Anything that is
signed, chained or sealed is hashed over these bytes.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import rfc8785

_CHUNK = 1 << 20


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON-compatible value (dicts, lists, str, int, float, bool, None)."""
    return rfc8785.dumps(value)


def jsonable(value: Any) -> Any:
    """The value with its infinities (a ratio over a zero rate) as the strings "inf" and "-inf", which
    canonical JSON can carry and `float()` reads back. NaN stays: it is a defect, not a measurement."""
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_of(value: Any) -> str:
    """SHA-256 (hex) of a value's canonical JSON."""
    return sha256_hex(canonical_json(value))


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def file_md5(path: str | Path) -> str:
    """MD5 as DVC records it: whether a file still holds the bytes DVC recorded. The ledger's digests,
    what evidence is checked against, are SHA-256."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_sha256(root: str | Path, ignore: frozenset[str] = frozenset()) -> str:
    """One digest over a directory: canonical JSON of {relative path: file sha256}, minus files named in `ignore`."""
    root = Path(root)
    files = {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ignore
    }
    return digest_of(files)
