"""What `Ledger.verify` reports: the scan's first break named by the stored field at fault, a payload gone
outside retention, and whether the log extends a signed checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from hashlib import sha256
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Table, select

from governance.ledger.merkle import ConsistencyProof, verify_consistency
from governance.ledger.records import RECORD, record_bytes
from governance.ledger.retention import unexplained_expiry
from governance.ledger.scan import Broken, ScanRow, scan_log
from governance.ledger.tables import stored_bytes
from governance.ledger.tree import consistency_proof

if TYPE_CHECKING:
    from governance.ledger.checkpoint import Checkpoint


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of `Ledger.verify`. On failure `first_bad_seq` and `problem` name the entry and field."""

    ok: bool
    size: int
    root: str | None  # recomputed Merkle root; None when the scan stopped at a bad entry
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoint_size: int | None = None
    consistency: ConsistencyProof | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["consistency"] = self.consistency.to_dict() if self.consistency else None
        return data


def verify_log(
    conn: Connection, entries: Table, nodes: Table, size: int, checkpoint: Checkpoint | None
) -> VerifyReport:
    """Verify the first `size` entries (see `Ledger.verify`) in the snapshot `conn` reads."""
    try:
        root, at_checkpoint = scan_log(conn, entries, nodes, size, checkpoint.size if checkpoint else None)
    except Broken as broken:
        problem = broken.problem or _describe(conn, entries, broken)
        return VerifyReport(ok=False, size=size, root=None, first_bad_seq=broken.seq, problem=problem)
    unexplained = unexplained_expiry(conn, entries, size)
    if unexplained is not None:
        return VerifyReport(ok=False, size=size, root=root.hex(), first_bad_seq=unexplained[0], problem=unexplained[1])
    if checkpoint is None:
        return VerifyReport(ok=True, size=size, root=root.hex())
    return _against_checkpoint(conn, entries, nodes, checkpoint, size, root, at_checkpoint)


def _describe(conn: Connection, entries: Table, broken: Broken) -> str:
    e, dialect = entries.c, conn.dialect.name
    columns = (e.content, e.payload, e.payload_digest, e.entry_hash)
    near = select(e.seq, *(stored_bytes(dialect, c) for c in columns)).where(e.seq >= broken.seq)
    rows = {row[0]: tuple(row) for row in conn.execute(near.order_by(e.seq).limit(2))}
    return _describe_break(broken.seq, broken.link.decode(), rows)


def _describe_break(seq: int, link: str, rows: dict[int, ScanRow]) -> str:
    """Why entry `seq` does not verify, naming the stored field at fault (slow path, runs once)."""
    row = rows.get(seq)
    if row is None:
        later = min(rows)
        return (
            f"entry {seq} is missing: the log goes from "
            + (f"entry {seq - 1}" if seq > 1 else "the start")
            + f" to entry {later}"
        )
    _, content, payload, payload_digest, entry_hash = row
    for name, value in (("content", content), ("payload_digest", payload_digest), ("entry_hash", entry_hash)):
        if value is None:
            return f"entry {seq}: {name} is empty"
    payload_digest, entry_hash = payload_digest.decode(errors="replace"), entry_hash.decode(errors="replace")
    computed = sha256(record_bytes(content, payload_digest, link, seq)).hexdigest()
    if payload is not None and sha256(payload).hexdigest() != payload_digest:
        if computed == entry_hash:
            return f"entry {seq}: payload was altered: it no longer matches its payload_digest"
        return f"entry {seq}: payload_digest was altered: it matches neither the payload nor the entry hash"
    following = rows.get(seq + 1)

    def next_links_to(prev: str) -> bool:
        if following is None:
            return False
        nseq, ncontent, _, npd, nhash = following
        if ncontent is None or npd is None or nhash is None:
            return False
        return sha256(RECORD % (ncontent, npd, prev.encode(), nseq)).hexdigest().encode() == nhash

    if next_links_to(computed):
        return (
            f"entry {seq}: entry_hash was altered: the entry hashes to {computed[:16]}…, which entry {seq + 1} links to"
        )
    if following is None:
        return f"entry {seq}: content or entry_hash was altered: the entry no longer hashes to its entry_hash"
    if not next_links_to(entry_hash):
        return (
            f"entry {seq}: neither its content nor its entry_hash fit the chain between entries "
            f"{seq - 1} and {seq + 1}: the entry was replaced, moved or swapped"
        )
    fields = "content (ts, actor, action, subject, digests)"
    return (
        f"entry {seq}: {fields if payload is not None else fields + ' or payload_digest'} was altered: "
        "the entry no longer hashes to its entry_hash"
    )


def _against_checkpoint(
    conn: Connection,
    entries: Table,
    nodes: Table,
    checkpoint: Checkpoint,
    size: int,
    root: bytes,
    at_checkpoint: bytes | None,
) -> VerifyReport:
    signed = f"the checkpoint signed by {checkpoint.signer} at {checkpoint.issued_at}"

    def failed(first_bad_seq: int, problem: str) -> VerifyReport:
        return VerifyReport(
            ok=False,
            size=size,
            root=root.hex(),
            first_bad_seq=first_bad_seq,
            problem=problem,
            checkpoint_size=checkpoint.size,
        )

    if at_checkpoint is None:
        return failed(
            size + 1,
            f"entry {size + 1} is missing: the log has {size} entries but {signed} "
            f"covers {checkpoint.size}: the tail was truncated",
        )
    if at_checkpoint.hex() != checkpoint.root:
        return failed(
            checkpoint.size,
            f"entries 1..{checkpoint.size} no longer match {signed}: their Merkle root "
            f"is {at_checkpoint.hex()[:16]}…, signed {checkpoint.root[:16]}…; "
            f"history up to entry {checkpoint.size} was rewritten",
        )
    proof = consistency_proof(conn, entries, nodes, checkpoint.size, size)
    if not verify_consistency(checkpoint.size, size, at_checkpoint, root, [bytes.fromhex(p) for p in proof.path]):
        return failed(
            checkpoint.size + 1,
            f"the stored Merkle nodes do not prove that entries after {checkpoint.size} extend {signed}",
        )
    return VerifyReport(ok=True, size=size, root=root.hex(), checkpoint_size=checkpoint.size, consistency=proof)
