"""The tamper-evident audit ledger: hash-chained entries, Merkle proofs, signed checkpoints.

- `store`: the `Ledger` API (appends under the write lock, queries, proofs, verify);
- `records`: the hashed record format, event validation, reading an entry back;
- `tables`: the two tables, and the columns the database derives from the hashed bytes;
- `merkle`: RFC 6962 hashing, proofs and their verification (pure);
- `tree`: the Merkle tree as stored: nodes written on append, roots and proofs read from them;
- `scan`: the chain and tree recomputed from the stored bytes (two processes for a large log);
- `verify`: the report of a verification: the first break in words, the checkpoint's proof;
- `dates`: entries dated by hand, read incrementally by a long-lived reader;
- `retention`: a payload may be gone only because a credible retention run expired it;
- `checkpoint`: signed checkpoints of the ledger's size and root.
"""

from governance.ledger.checkpoint import Checkpoint, CheckpointError, sign_checkpoint, verify_checkpoint_signature
from governance.ledger.merkle import ConsistencyProof, InclusionProof, verify_consistency, verify_inclusion
from governance.ledger.records import LedgerEntry, LedgerError
from governance.ledger.store import LAST_SEQ, Ledger
from governance.ledger.verify import VerifyReport

__all__ = [
    "LAST_SEQ",
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
