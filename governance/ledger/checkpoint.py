"""Signed checkpoints of the ledger: (size, Merkle root, time, signer), Ed25519-signed.

A checkpoint kept outside the ledger's database makes a truncated tail or a consistently
rewritten history detectable: `Ledger.verify(checkpoint)` proves the current log extends it.
The signature covers the canonical JSON of the checkpoint's fields plus a fixed `kind`, so a
checkpoint signature can never pass for a signed statement made with the same key.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from governance.digests import canonical_json
from governance.errors import GovernanceError
from governance.timestamps import utc_timestamp

if TYPE_CHECKING:
    from governance.ledger.store import Ledger

KIND = "governance.ledger.checkpoint/v1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{128}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


class CheckpointError(GovernanceError):
    """A checkpoint is malformed, its signature does not verify, or it cannot be signed."""


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: str  # Merkle root (hex) of the first `size` entries
    issued_at: str
    signer: str
    signature: str  # Ed25519 signature (hex) over `signed_bytes()`

    def signed_bytes(self) -> bytes:
        return canonical_json(
            {"kind": KIND, "size": self.size, "root": self.root, "issued_at": self.issued_at, "signer": self.signer}
        )

    def to_json(self) -> str:
        return json.dumps({"kind": KIND, **asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Parse and validate; errors name the field."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CheckpointError(f"checkpoint is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise CheckpointError(f"not a ledger checkpoint: field 'kind' must be {KIND!r}")
        checks = {
            "size": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "root": lambda v: isinstance(v, str) and bool(_HEX64.match(v)),
            "issued_at": lambda v: isinstance(v, str) and bool(_TIMESTAMP.match(v)),
            "signer": lambda v: isinstance(v, str) and bool(v.strip()),
            "signature": lambda v: isinstance(v, str) and bool(_HEX_SIGNATURE.match(v)),
        }
        unknown = set(data) - set(checks) - {"kind"}
        if unknown:
            raise CheckpointError(f"checkpoint has unknown field(s) {sorted(unknown)}")
        for field, valid in checks.items():
            if field not in data:
                raise CheckpointError(f"checkpoint field {field!r} is missing")
            if not valid(data[field]):
                raise CheckpointError(f"checkpoint field {field!r} is invalid: {data[field]!r}")
        return cls(**{field: data[field] for field in checks})


def sign_checkpoint(ledger: Ledger, private_key: Ed25519PrivateKey, signer: str) -> Checkpoint:
    """Verify the ledger, then sign its current size and root. Refuses to vouch for a broken log."""
    report = ledger.verify()
    if not report.ok or report.root is None:
        raise CheckpointError(
            f"refusing to sign a checkpoint: the ledger does not verify at entry "
            f"{report.first_bad_seq}: {report.problem}"
        )
    unsigned = Checkpoint(size=report.size, root=report.root, issued_at=utc_timestamp(), signer=signer, signature="")
    return replace(unsigned, signature=private_key.sign(unsigned.signed_bytes()).hex())


def verify_checkpoint_signature(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> None:
    """Raise CheckpointError unless `public_key` signed exactly this checkpoint."""
    try:
        public_key.verify(bytes.fromhex(checkpoint.signature), checkpoint.signed_bytes())
    except (InvalidSignature, ValueError):
        raise CheckpointError(
            f"the checkpoint of {checkpoint.size} entries signed by {checkpoint.signer!r} at "
            f"{checkpoint.issued_at} does not verify with the given public key"
        ) from None
