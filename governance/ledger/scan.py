"""The verification scan: the chain, payload digests and Merkle tree recomputed from the stored bytes.

`scan_log` reads the entries in order, a block (256 entries) at a time, checks each record against the
previous stored entry hash and each completed block against the stored Merkle nodes, and stops at the
first entry that does not verify (`Broken`). From `PARALLEL_FROM` entries, in a process that can fork
safely, a forked process scans the second half and hands back its block roots, which this process
checks against the stored nodes in order, so the answer is the one a single scan gives.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from sqlalchemy import URL, Connection, Table, create_engine, select
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.pool import NullPool

from governance.ledger.merkle import Frontier, mth
from governance.ledger.records import GENESIS, RECORD, LedgerError
from governance.ledger.tables import stored_bytes
from governance.ledger.tree import BLOCK, BLOCK_HEIGHT, span

# A scanned row: (seq, content, payload, payload_digest, entry_hash), the text columns as their stored bytes
# (None where NULL).
ScanRow = tuple[Any, ...]

PARALLEL_FROM = 200_000  # entries: from here a second process verifying half the log saves more than it costs
HALF_LOCK_TIMEOUT = "10s"  # PostgreSQL: a lock the second half waits for may be queued behind this process's


class Broken(Exception):
    """The scan stopped at entry `seq`; `problem` is set when the scan already knows why."""

    def __init__(self, seq: int, link: bytes, problem: str | None = None) -> None:
        super().__init__(seq)
        self.seq, self.link, self.problem = seq, link, problem


class _Scan:
    """Recomputes the chain and the Merkle tree from stored bytes, one block of entries at a time."""

    def __init__(self, stored_nodes: dict[tuple[int, int], str], size: int = 0, link: bytes = GENESIS.encode()) -> None:
        self.stored = stored_nodes
        self.frontier = Frontier()
        self.leaves: list[bytes] = []
        self.link = link
        self.size = size

    def wanted(self, stop: int | None) -> int:
        """How many rows to feed next: up to the end of the block, and not past `stop`."""
        room = BLOCK - len(self.leaves)
        return room if stop is None or self.size >= stop else min(room, stop - self.size)

    def add(self, rows: Sequence[ScanRow]) -> None:
        """Check rows that lie within one block.

        The hot path of verify(): whole columns at a time in comprehensions, each record
        linked to the previous *stored* entry hash (all of which are checked), so no row
        waits for the one before it. Any doubt falls back to a row-by-row search.
        """
        seqs, contents, payloads, payload_digests, entry_hashes = zip(*rows)
        try:
            digests = [
                sha256(RECORD % record).digest()
                for record in zip(contents, payload_digests, (self.link, *entry_hashes[:-1]), seqs)
            ]
            intact = (
                seqs == tuple(range(self.size + 1, self.size + 1 + len(rows)))
                and tuple([digest.hex().encode() for digest in digests]) == entry_hashes
                and tuple(
                    [
                        stored if payload is None else sha256(payload).hexdigest().encode()
                        for payload, stored in zip(payloads, payload_digests)
                    ]
                )
                == payload_digests
            )
        except TypeError:  # a NULL or non-text value where the schema wants text
            intact = False
        if not intact:
            raise self._first_break(rows)
        self.leaves += [sha256(b"\x00" + digest).digest() for digest in digests]
        self.link, self.size = entry_hashes[-1], seqs[-1]
        if len(self.leaves) == BLOCK:
            self._close_block()

    def _first_break(self, rows: Sequence[ScanRow]) -> Broken:
        link, expected = self.link, self.size + 1
        for seq, content, payload, payload_digest, entry_hash in rows:
            try:
                intact = (
                    seq == expected
                    and sha256(RECORD % (content, payload_digest, link, seq)).hexdigest().encode() == entry_hash
                    and (payload is None or sha256(payload).hexdigest().encode() == payload_digest)
                )
            except TypeError:
                intact = False
            if not intact:
                return Broken(expected, link)
            link, expected = entry_hash, expected + 1
        raise RuntimeError("the block check and the row check of verify() disagree")

    def _close_block(self) -> None:
        block_root, self.leaves = mth(self.leaves), []
        self._push_block(block_root)

    def _push_block(self, block_root: bytes) -> None:
        """Add the next block's root to the tree; every stored node it completes must match."""
        for level, idx, digest in self.frontier.push(BLOCK_HEIGHT, block_root):
            stored = self.stored.pop((level, idx), None)
            if stored != digest.hex():
                state = "is missing" if stored is None else f"is {stored[:16]}…, recomputed {digest.hex()[:16]}…"
                raise Broken(
                    (idx << level) + 1,
                    self.link,
                    f"the stored Merkle node over {span(level, idx)} {state}: the node table was "
                    "altered (those entries hash correctly, but proofs over them would not verify)",
                )

    def root(self) -> bytes:
        return self.frontier.root(self.leaves)

    def take_over(self, half: _Half, split: int, stop: int | None) -> bytes | None:
        """Continue with the second half's result (its blocks, then its tail or its break), in the order one
        scan would have met them; returns the root at `stop` if that falls in the half."""
        if self.size != split or half.start_link != self.link:  # the first half's last entries are missing,
            raise Broken(self.size + 1, self.link)  # or the halves did not meet at the same stored hash
        at_stop = None
        for block_root in half.block_roots:
            if stop is not None and self.size < stop <= self.size + BLOCK:
                at_stop = self.frontier.root(half.stop_leaves)
            self._push_block(block_root)
            self.size += BLOCK
        if half.broken is not None:  # after the blocks before it, whose stored nodes may break first
            raise Broken(*half.broken)
        self.leaves, self.link, self.size = list(half.tail), half.link, half.size
        if stop is not None and self.size - len(self.leaves) < stop <= self.size:
            at_stop = self.frontier.root(half.stop_leaves)
        return at_stop

    def check_no_stray_nodes(self) -> None:
        if self.stored:
            level, idx = min(self.stored, key=lambda key: key[1] << key[0])
            raise Broken(
                self.size + 1,
                self.link,
                f"a stored Merkle node covers {span(level, idx)} but the log ends at entry "
                f"{self.size}: entries after {self.size} were removed, or the node table was altered",
            )


def scan_log(conn: Connection, entries: Table, nodes: Table, size: int, stop: int | None) -> tuple[bytes, bytes | None]:
    """The Merkle root (bytes) of the first `size` entries, and the root at `stop` (None when the log is shorter
    than `stop`), recomputed from the stored bytes; raises Broken at the first entry that does not verify."""
    c = nodes.c
    scan = _Scan({(level, idx): value for level, idx, value in conn.execute(select(c.level, c.idx, c.hash))})
    at_stop = scan.root() if stop == 0 else None
    split = _split(size)
    second = None if split is None else _SecondHalf(conn, entries, split, size, stop)
    try:
        cursor = _cursor(conn, entries, 0, size if second is None else second.split)
        try:
            while rows := cursor.fetchmany(scan.wanted(stop)):
                scan.add(rows)
                if scan.size == stop:
                    at_stop = scan.root()
        finally:
            cursor.close()
        if second is not None:
            at_half = scan.take_over(second.result(), second.split, stop)
            at_stop = at_stop if at_half is None else at_half
        scan.check_no_stray_nodes()
    finally:
        if second is not None:
            second.close()
    return scan.root(), at_stop


def _cursor(conn: Connection, entries: Table, after: int, last: int) -> DBAPICursor:
    """DBAPI cursor over (seq, content, payload, payload_digest, entry_hash) as bytes, in order, of the
    entries after `after` up to `last`.

    Raw DBAPI rows: SQLAlchemy Row objects double the cost of a 1M-entry verify (measured).
    """
    e, dialect = entries.c, conn.dialect.name
    query = select(e.seq, *(stored_bytes(dialect, c) for c in (e.content, e.payload, e.payload_digest, e.entry_hash)))
    query = query.where(e.seq > after, e.seq <= last).order_by(e.seq)
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:
        raise LedgerError("the database connection was invalidated while verifying the ledger")
    cursor = dbapi.cursor() if dialect == "sqlite" else dbapi.cursor(name="ledger_verify")
    cursor.execute(sql)
    return cursor


# --- the second half, in a forked process ------------------------------------------------


def _split(size: int) -> int | None:
    """Where the log is cut for two processes to verify a half each (a block boundary), or None for one.

    Only a process with no other thread forks (a thread holding a lock when it forks would leave the child
    waiting for it forever): the CLI and the benchmark, not a Dagster process, which verifies in one.
    """
    if size < PARALLEL_FROM or not _forking_is_safe():
        return None
    split = size // 2 // BLOCK * BLOCK
    return split or None


def _forking_is_safe() -> bool:
    return (
        sys.platform == "linux" and threading.active_count() == 1 and not multiprocessing.current_process().daemon
    )  # a daemonic process may not have children


@dataclass(frozen=True)
class _Half:
    """What the second process found: the roots of its complete blocks, then its break (seq, link, problem)
    or its tail and last link; `stop_leaves` are the leaves from the start of the stop's block to the stop.
    `start_link` is the stored entry hash of the entry before the half, None if that entry is missing."""

    broken: tuple[int, bytes, str | None] | None
    start_link: bytes | None = None
    block_roots: tuple[bytes, ...] = ()
    tail: tuple[bytes, ...] = ()
    stop_leaves: tuple[bytes, ...] = ()
    link: bytes = b""
    size: int = 0


class _HalfScan(_Scan):
    """The second half's scan: block roots are handed back, not checked (the first process checks them
    against the stored nodes as it takes them over, in order)."""

    def __init__(self, size: int, link: bytes, stop: int | None) -> None:
        super().__init__({}, size, link)
        self.stop = stop
        self.block_roots: list[bytes] = []
        self.stop_leaves: list[bytes] = []

    def add(self, rows: Sequence[ScanRow]) -> None:
        super().add(rows)
        if self.size == self.stop and self.leaves:
            self.stop_leaves = list(self.leaves)

    def _close_block(self) -> None:
        if self.size == self.stop:
            self.stop_leaves = list(self.leaves)
        self.block_roots.append(mth(self.leaves))
        self.leaves = []


class _SecondHalf:
    """Entries after `split` up to `size`, verified by a forked process while this one does the first half."""

    def __init__(self, conn: Connection, entries: Table, split: int, size: int, stop: int | None) -> None:
        context = multiprocessing.get_context("fork")
        self._results, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_verify_half,
            args=(conn.engine.url, entries, split, size, stop, _exported_snapshot(conn), sender),
            name="ledger-verify-second-half",
            daemon=True,
        )
        self._process.start()
        sender.close()
        self.split, self.size = split, size

    def result(self) -> _Half:
        try:
            found = self._results.recv()
        except (EOFError, OSError):
            self._process.join(timeout=5)
            found = f"the process ended with exit code {self._process.exitcode} and no result"
        if isinstance(found, str):
            raise LedgerError(f"verifying entries {self.split + 1}..{self.size} failed: {found}")
        return found

    def close(self) -> None:
        if self._process.is_alive():  # the first half broke: its answer is the first break
            self._process.kill()
        self._process.join()
        self._results.close()


def _exported_snapshot(conn: Connection) -> str | None:
    """PostgreSQL: this transaction's snapshot, for the second half to read exactly what this one reads."""
    return None if conn.dialect.name == "sqlite" else conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()


def _verify_half(
    url: URL,
    entries: Table,
    split: int,
    size: int,
    stop: int | None,
    snapshot: str | None,
    sender: multiprocessing.connection.Connection,
) -> None:
    """In the forked process: its own connection (the parent's are never touched), reading the parent's
    snapshot on PostgreSQL, and giving up on a lock rather than waiting for one behind the parent's."""
    try:
        with create_engine(url, poolclass=NullPool).connect() as conn:
            if snapshot is not None:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                if snapshot is not None:
                    if not re.fullmatch(r"[0-9A-F-]+", snapshot):
                        raise ValueError(f"unexpected snapshot id {snapshot!r}")
                    conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{HALF_LOCK_TIMEOUT}'")
                sender.send(_scan_half(conn, entries, split, size, stop))
    except Exception as exc:  # handed to the parent, which raises it as a LedgerError
        sender.send(f"{type(exc).__name__}: {exc}")
    finally:
        sender.close()


def _scan_half(conn: Connection, entries: Table, split: int, size: int, stop: int | None) -> _Half:
    e = entries.c
    link = conn.execute(select(stored_bytes(conn.dialect.name, e.entry_hash)).where(e.seq == split)).scalar()
    if link is None:  # entry `split` is missing: the first half stops before it, and take_over says so
        return _Half(broken=None)
    scan = _HalfScan(split, link, stop)
    cursor = _cursor(conn, entries, split, size)
    try:
        while rows := cursor.fetchmany(scan.wanted(stop)):
            scan.add(rows)
    except Broken as broken:
        return _Half(
            broken=(broken.seq, broken.link, broken.problem), start_link=link, block_roots=tuple(scan.block_roots)
        )
    finally:
        cursor.close()
    return _Half(None, link, tuple(scan.block_roots), tuple(scan.leaves), tuple(scan.stop_leaves), scan.link, scan.size)
