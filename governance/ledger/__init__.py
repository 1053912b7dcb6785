"""The tamper-evident audit ledger: hash-chained entries, Merkle proofs, signed checkpoints."""

from governance.ledger.checkpoint import Checkpoint, CheckpointError, sign_checkpoint, verify_checkpoint_signature
from governance.ledger.merkle import ConsistencyProof, InclusionProof, verify_consistency, verify_inclusion
from governance.ledger.store import Ledger, LedgerEntry, LedgerError, VerifyReport

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "ConsistencyProof",
    "InclusionProof",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "VerifyReport",
    "sign_checkpoint",
    "verify_checkpoint_signature",
    "verify_consistency",
    "verify_inclusion",
]
