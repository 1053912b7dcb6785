"""The ledger's Merkle tree as stored: roots and proofs read from the stored nodes and entry hashes.

Every complete subtree of `BLOCK` (256) or more entries is stored in `ledger_nodes` by the transaction
that completes it (`store_nodes`), so a proof reads about log2(n) rows. The hashing and the proofs
themselves are `governance.ledger.merkle`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import Connection, Select, Table, and_, bindparam, insert, or_, select

from governance.ledger.merkle import (
    ConsistencyProof,
    InclusionProof,
    consistency_path,
    inclusion_path,
    leaf_hash,
    mth,
    node_hash,
    split_point,
)
from governance.ledger.records import LedgerError

BLOCK_HEIGHT = 8
BLOCK = 1 << BLOCK_HEIGHT  # leaves under the smallest stored Merkle node


# Frequent queries are built once: building a SQLAlchemy statement costs more than running it.


@cache
def _leaf_query(entries: Table) -> Select[Any]:
    seq = entries.c.seq
    return select(seq, entries.c.entry_hash).where(seq > bindparam("low"), seq <= bindparam("high")).order_by(seq)


@cache
def _nodes_query(nodes: Table, levels: int) -> Select[Any]:
    """Stored nodes at levels BLOCK_HEIGHT.. with the given indices (parameters idx0, idx1, ...).

    One index lookup per level: SQLite would scan the table for a row-value IN list.
    """
    c = nodes.c
    return select(c.level, c.idx, c.hash).where(
        or_(
            *(and_(c.level == BLOCK_HEIGHT + i, c.idx.in_(bindparam(f"idx{i}", expanding=True))) for i in range(levels))
        )
    )


def _unhex(value: Any, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        raise LedgerError(f"{what} is not a hex digest; run `govern ledger verify`") from None


def span(level: int, idx: int) -> str:
    """The entries under the Merkle node at (level, idx), for messages."""
    return f"entries {(idx << level) + 1}..{(idx + 1) << level}"


class _TreeView:
    """Merkle hashes of the ledger's first `size` entries, from stored nodes and entry hashes."""

    def __init__(self, conn: Connection, entries: Table, nodes: Table, size: int) -> None:
        self._conn, self._entries, self._nodes, self.size = conn, entries, nodes, size
        self._blocks: dict[int, list[bytes]] = {}
        self.known: dict[tuple[int, int], bytes] = {}

    def leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes of entries start+1..end, which lie in one block."""
        block = start // BLOCK
        if block not in self._blocks:
            low, high = block * BLOCK, min((block + 1) * BLOCK, self.size)
            rows = self._conn.execute(_leaf_query(self._entries), {"low": low, "high": high}).all()
            if [row.seq for row in rows] != list(range(low + 1, high + 1)):
                raise LedgerError(f"entries {low + 1}..{high} are incomplete; run `govern ledger verify`")
            self._blocks[block] = [leaf_hash(_unhex(row.entry_hash, f"entry {row.seq}'s entry_hash")) for row in rows]
        offset = block * BLOCK
        return self._blocks[block][start - offset : end - offset]

    def preload(self, *, leaves: Iterable[int] = (), sizes: Iterable[int] = ()) -> None:
        """Read, in one query, every stored node a proof about these leaves and tree sizes can use:
        the ancestors of each leaf and their siblings, and the right-most complete subtree of each
        size at every level (which includes those that make up the size)."""
        # The same number of indices at every level keeps the SQL text, and so its prepared statement, reusable.
        wanted = [
            [(leaf >> level) ^ side for leaf in leaves for side in (0, 1)] + [(size >> level) - 1 for size in sizes]
            for level in range(BLOCK_HEIGHT, self.size.bit_length())
        ]
        if not wanted:
            return
        query = _nodes_query(self._nodes, len(wanted))
        for level, idx, stored in self._conn.execute(query, {f"idx{i}": idxs for i, idxs in enumerate(wanted)}):
            self.known[(level, idx)] = _unhex(stored, f"the Merkle node over {span(level, idx)}")

    def node(self, level: int, idx: int) -> bytes:
        if (level, idx) not in self.known:
            nodes = self._nodes.c
            stored = self._conn.execute(select(nodes.hash).where(nodes.level == level, nodes.idx == idx)).scalar()
            if stored is None:
                raise LedgerError(f"the Merkle node over {span(level, idx)} is missing; run `govern ledger verify`")
            self.known[(level, idx)] = _unhex(stored, f"the Merkle node over {span(level, idx)}")
        return self.known[(level, idx)]

    def subtree(self, start: int, end: int) -> bytes:
        """Merkle tree hash of leaves [start, end) (a range of the RFC 6962 recursion)."""
        size = end - start
        if size >= BLOCK and size & (size - 1) == 0:
            return self.node(size.bit_length() - 1, start // size)
        if size <= BLOCK:
            return mth(self.leaves(start, end))
        k = split_point(size)
        return node_hash(self.subtree(start, start + k), self.subtree(start + k, end))


def store_nodes(conn: Connection, entries: Table, nodes: Table, old_size: int, new_size: int) -> None:
    """Store the Merkle nodes (256+ entries) that entries old_size+1..new_size complete."""
    if new_size // BLOCK == old_size // BLOCK:
        return
    tree = _TreeView(conn, entries, nodes, new_size)
    made: dict[tuple[int, int], bytes] = {}
    level = BLOCK_HEIGHT
    while (1 << level) <= new_size:
        for idx in range(old_size >> level, new_size >> level):
            if level == BLOCK_HEIGHT:
                digest = mth(tree.leaves(idx * BLOCK, (idx + 1) * BLOCK))
            else:
                digest = node_hash(tree.node(level - 1, 2 * idx), tree.node(level - 1, 2 * idx + 1))
            tree.known[(level, idx)] = made[(level, idx)] = digest
        level += 1
    conn.execute(
        insert(nodes),
        [{"level": level, "idx": idx, "hash": digest.hex()} for (level, idx), digest in made.items()],
    )


def root(conn: Connection, entries: Table, nodes: Table, size: int) -> str:
    """Merkle root (hex) of the first `size` entries."""
    tree = _TreeView(conn, entries, nodes, size)
    tree.preload(sizes=[size])
    return tree.subtree(0, size).hex()


def inclusion_proof(conn: Connection, entries: Table, nodes: Table, seq: int, size: int) -> InclusionProof:
    """Proof that entry `seq` is among the first `size` entries."""
    return inclusion_proofs(conn, entries, nodes, [seq], size)[seq]


def inclusion_proofs(
    conn: Connection, entries: Table, nodes: Table, seqs: Iterable[int], size: int
) -> dict[int, InclusionProof]:
    """Proofs that each entry of `seqs` is among the first `size` entries: the stored nodes they use are read in
    one query, and each block of leaves once (a lineage cites a few dozen entries)."""
    wanted = sorted(set(seqs))
    outside = [seq for seq in wanted if not 1 <= seq <= size]
    if outside:
        raise LedgerError(f"entry {outside[0]} is not among the first {size} entries")
    tree = _TreeView(conn, entries, nodes, size)
    tree.preload(leaves=[seq - 1 for seq in wanted], sizes=[size])
    column = entries.c
    stored = dict(conn.execute(select(column.seq, column.entry_hash).where(column.seq.in_(wanted))).tuples().all())
    root = tree.subtree(0, size).hex()
    proofs = {}
    for seq in wanted:
        if stored.get(seq) is None:
            raise LedgerError(f"entry {seq} is missing; run `govern ledger verify`")
        path = inclusion_path(seq - 1, size, tree.subtree)
        proofs[seq] = InclusionProof(
            seq=seq, size=size, entry_hash=stored[seq], path=tuple(p.hex() for p in path), root=root
        )
    return proofs


def consistency_proof(conn: Connection, entries: Table, nodes: Table, old_size: int, new_size: int) -> ConsistencyProof:
    """Proof that the tree of the first `old_size` entries is a prefix of the tree of the first `new_size`."""
    if not 0 <= old_size <= new_size:
        raise LedgerError(f"cannot prove a tree of {old_size} entries consistent with one of {new_size}")
    tree = _TreeView(conn, entries, nodes, new_size)
    tree.preload(leaves=[old_size - 1] if old_size else [], sizes=[old_size, new_size])
    path = consistency_path(old_size, new_size, tree.subtree)
    return ConsistencyProof(
        old_size=old_size,
        new_size=new_size,
        old_root=tree.subtree(0, old_size).hex(),
        new_root=tree.subtree(0, new_size).hex(),
        path=tuple(p.hex() for p in path),
    )
