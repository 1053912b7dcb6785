"""RFC 6962 / RFC 9162 Merkle tree over ledger entries: hashes, proofs and their verification.

Leaf hash = SHA-256(0x00 || entry hash), node hash = SHA-256(0x01 || left || right), the
root of an empty tree is SHA-256(""). Leaf `i` (0-based) is the entry with sequence `i + 1`.

Proof *generation* walks the RFC 6962 recursion and asks a `subtree(start, end)` callable
for the hash of leaves [start, end); the ledger answers from its stored nodes. Every range
the recursion asks for is either a complete, aligned power-of-two subtree or the right
edge of the tree. Proof *verification* is pure (RFC 9162, sections 2.1.3.2 and 2.1.4.2)
and needs nothing but the proof and the roots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from hashlib import sha256

EMPTY_ROOT = sha256(b"").digest()

Subtree = Callable[[int, int], bytes]


def leaf_hash(entry_hash: bytes) -> bytes:
    return sha256(b"\x00" + entry_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def mth(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of a list of leaf hashes (bottom-up; equal to the RFC 6962 recursion)."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        paired = [sha256(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2])]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def split_point(size: int) -> int:
    """The largest power of two smaller than `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


class Frontier:
    """The complete subtrees that make up the first n leaves, largest first.

    Push subtrees left to right (a subtree of height h only where n is a multiple of 2**h);
    equal neighbours merge. Used to recompute the tree in one pass.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def push(self, height: int, digest: bytes) -> list[tuple[int, int, bytes]]:
        """Add a subtree; return every (height, index, hash) node this completes, the pushed one first."""
        self.size += 1 << height
        made = [(height, (self.size >> height) - 1, digest)]
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            digest = node_hash(left, digest)
            height += 1
            made.append((height, (self.size >> height) - 1, digest))
        self._stack.append((height, digest))
        return made

    def root(self, tail: Sequence[bytes] = ()) -> bytes:
        """Root of the tree made of the pushed subtrees followed by the `tail` leaves."""
        stack = [digest for _, digest in self._stack]
        if tail:
            stack.append(mth(tail))
        if not stack:
            return EMPTY_ROOT
        digest = stack[-1]
        for left in reversed(stack[:-1]):
            digest = node_hash(left, digest)
        return digest


# --- proof generation (RFC 6962, 2.1.1 and 2.1.2) ------------------------------------------


def inclusion_path(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """Audit path of leaf `index` in the tree of the first `size` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_path(old_size: int, new_size: int, subtree: Subtree) -> list[bytes]:
    """Proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"cannot prove {old_size} leaves consistent with {new_size}")
    if old_size in (0, new_size):
        return []
    path: list[bytes] = []
    start, end, whole = 0, new_size, True
    while end != old_size:
        k = split_point(end - start)
        if old_size - start <= k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start += k
            whole = False
    if not whole:
        path.append(subtree(start, end))
    path.reverse()
    return path


# --- proof verification (RFC 9162, 2.1.3.2 and 2.1.4.2) ------------------------------------


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """True if `path` proves that `leaf` is leaf `index` of the tree of `size` leaves with `root`."""
    if not 0 <= index < size:
        return False
    fn, sn, digest = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            digest = node_hash(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and digest == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]) -> bool:
    """True if `path` proves the tree (old_size, old_root) is a prefix of (new_size, new_root)."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        return not path and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not path and old_root == new_root
    if not path:
        return False
    path = list(path)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# --- proofs as data ------------------------------------------------------------------------


def _unhex(values: Sequence[str]) -> list[bytes] | None:
    try:
        return [bytes.fromhex(value) for value in values]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class InclusionProof:
    """Entry `seq` (with `entry_hash`) is in the ledger's first `size` entries, whose root is `root`."""

    seq: int
    size: int
    entry_hash: str
    path: tuple[str, ...]
    root: str

    def verify(self) -> bool:
        values = _unhex([self.entry_hash, self.root, *self.path])
        if values is None:
            return False
        entry_hash, root, *path = values
        return verify_inclusion(leaf_hash(entry_hash), self.seq - 1, self.size, path, root)

    def to_dict(self) -> dict:
        return {**asdict(self), "path": list(self.path)}


@dataclass(frozen=True)
class ConsistencyProof:
    """The ledger's first `old_size` entries (root `old_root`) are a prefix of its first `new_size`."""

    old_size: int
    new_size: int
    old_root: str
    new_root: str
    path: tuple[str, ...]

    def verify(self) -> bool:
        values = _unhex([self.old_root, self.new_root, *self.path])
        if values is None:
            return False
        old_root, new_root, *path = values
        return verify_consistency(self.old_size, self.new_size, old_root, new_root, path)

    def to_dict(self) -> dict:
        return {**asdict(self), "path": list(self.path)}
