"""The audit ledger: an append-only, hash-chained log of governance events with a Merkle tree.

Entry hash = SHA-256 of the canonical JSON (RFC 8785) of the record

    {"entry": {"action", "actor", "digests", "facts" (only when not empty), "subject", "ts"},
     "payload_digest": <sha256 hex of the payload's canonical JSON>,
     "prev_hash": <entry hash of the previous entry, 64 zeros for the first>,
     "seq": <1-based sequence number>}

The hash covers the payload's digest, not the payload, so retention can drop payloads and
the chain still verifies. Facts (state that decisions depend on, see `governance.events`)
are hashed with the entry and never expire. `content` stores the canonical bytes of "entry"; "entry" sorts
before the other keys, so the record is `content` spliced into a fixed template and
`verify()` hashes stored bytes without parsing JSON.

Tables (in the governance database; SQLite by default, PostgreSQL by URL):
- ledger_entries(seq, content, payload, payload_digest, entry_hash) and the columns
  model, version, action, ts, which the database generates from `content` for queries:
  nothing a writer can set apart from the hashed bytes (virtual in SQLite; stored in
  PostgreSQL, which refuses updates to them);
- ledger_nodes(level, idx, hash): every complete Merkle subtree of 256 or more entries,
  written in the transaction that completes it, so a proof reads about log2(n) rows.

Appends take the ledger's write lock (`governance.db.write_transaction`): one writer at a
time across processes, so the chain never forks and no entry is lost.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import cache, cached_property
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Computed,
    Connection,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    create_engine,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.pool import NullPool

from governance.config import SHORTEST_RETENTION_DAYS
from governance.db import engine_for, is_sqlite, write_transaction
from governance.digests import canonical_json
from governance.errors import GovernanceError
from governance.events import E, Event, RetentionApplied, actions
from governance.ledger.merkle import (
    ConsistencyProof,
    Frontier,
    InclusionProof,
    consistency_path,
    inclusion_path,
    leaf_hash,
    mth,
    node_hash,
    split_point,
    verify_consistency,
)
from governance.migrations import require_current
from governance.timestamps import MAX_CLOCK_SKEW, parse_utc, utc_now, utc_timestamp

if TYPE_CHECKING:
    from governance.ledger.checkpoint import Checkpoint
    from governance.settings import Settings

LOCK = "governance.ledger"
GENESIS = "0" * 64
BLOCK_HEIGHT = 8
BLOCK = 1 << BLOCK_HEIGHT  # leaves under the smallest stored Merkle node
MAX_PAYLOAD_BYTES = 16_384

_RECORD = b'{"entry":%b,"payload_digest":"%b","prev_hash":"%b","seq":%d}'
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_EVENT_FIELDS = {"actor", "action", "subject", "digests", "facts", "payload"}
HASHED_FIELDS = ("action", "actor", "digests", "facts", "subject", "ts")
# Query columns the database derives from `content`: name -> JSON path.
_DERIVED = {"model": ("subject", "model"), "version": ("subject", "version"), "action": ("action",), "ts": ("ts",)}


class LedgerError(GovernanceError):
    """A ledger operation was refused: bad event, unknown entry or size, unreadable store."""


def entry_content(fields: dict) -> bytes:
    """Canonical JSON of an entry's hashed fields; `facts` only when an entry has some (older entries have none)."""
    return canonical_json({name: fields[name] for name in HASHED_FIELDS if name != "facts" or fields.get(name)})


def record_bytes(content: bytes, payload_digest: str, prev_hash: str, seq: int) -> bytes:
    """Canonical JSON of an entry's hashed record (see the module docstring)."""
    return _RECORD % (content, payload_digest.encode(), prev_hash.encode(), seq)


def incredible_retention(ts: str, cutoff: str, what: str = "payloads") -> str | None:
    """Why a retention run recorded at `ts` that forgot `what` (payloads, decisions) made before `cutoff` cannot be
    real, or None."""
    try:
        recorded, before = parse_utc(ts), parse_utc(cutoff)
    except ValueError:
        return f"has no valid cut-off ({cutoff!r})"
    if recorded > utc_now() + MAX_CLOCK_SKEW:
        return f"is dated {ts}, in the future"
    if before > recorded - timedelta(days=SHORTEST_RETENTION_DAYS):
        return (
            f"at {ts} claims to expire {what} recorded before {cutoff}, "
            f"closer to the run than the shortest retention ({SHORTEST_RETENTION_DAYS} day)"
        )
    return None


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


# --- schema ------------------------------------------------------------------------------


def _derived_column(dialect: str, name: str) -> Column:
    path = _DERIVED[name]
    if dialect == "sqlite":
        return Column(name, Text, Computed(f"json_extract(content, '$.{'.'.join(path)}')", persisted=False))
    return Column(name, Text, Computed(f"(content::jsonb #>> '{{{','.join(path)}}}')", persisted=True))


@cache
def _tables(dialect: str) -> tuple[Table, Table]:
    sequence = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid
    metadata = MetaData()
    entries = Table(
        "ledger_entries",
        metadata,
        Column("seq", sequence, primary_key=True, autoincrement=False),
        Column("content", Text, nullable=False),
        Column("payload", Text),
        Column("payload_digest", Text, nullable=False),
        Column("entry_hash", Text, nullable=False),
        *(_derived_column(dialect, name) for name in _DERIVED),
        CheckConstraint("seq >= 1", name="ledger_entries_seq_positive"),
        Index("ix_ledger_entries_model", "model", "version", "seq"),
        Index("ix_ledger_entries_model_seq", "model", "seq"),  # a model's newest entries, without a sort
        Index("ix_ledger_entries_action", "action", "seq"),
        # Entries whose payload retention expired: verify checks each against the retention runs.
        Index(
            "ix_ledger_entries_expired",
            "seq",
            sqlite_where=text("payload IS NULL"),
            postgresql_where=text("payload IS NULL"),
        ),
    )
    nodes = Table(
        "ledger_nodes",
        metadata,
        Column("level", Integer, primary_key=True),
        Column("idx", sequence, primary_key=True),
        Column("hash", Text, nullable=False),
    )
    return entries, nodes


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


def _validated(event: Any, where: str) -> dict:
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


# --- reading the tree ----------------------------------------------------------------------
# Frequent queries are built once: building a SQLAlchemy statement costs more than running it.


@cache
def _head_query(entries: Table):
    return select(entries.c.seq, entries.c.entry_hash).order_by(entries.c.seq.desc()).limit(1)


@cache
def _leaf_query(entries: Table):
    seq = entries.c.seq
    return select(seq, entries.c.entry_hash).where(seq > bindparam("low"), seq <= bindparam("high")).order_by(seq)


@cache
def _nodes_query(nodes: Table, levels: int):
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


def _span(level: int, idx: int) -> str:
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
            self.known[(level, idx)] = _unhex(stored, f"the Merkle node over {_span(level, idx)}")

    def node(self, level: int, idx: int) -> bytes:
        if (level, idx) not in self.known:
            nodes = self._nodes.c
            stored = self._conn.execute(select(nodes.hash).where(nodes.level == level, nodes.idx == idx)).scalar()
            if stored is None:
                raise LedgerError(f"the Merkle node over {_span(level, idx)} is missing; run `govern ledger verify`")
            self.known[(level, idx)] = _unhex(stored, f"the Merkle node over {_span(level, idx)}")
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


# --- verification ------------------------------------------------------------------------


class _Broken(Exception):
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

    def add(self, rows: list[tuple]) -> None:
        """Check rows (seq, content, payload, payload_digest, entry_hash) that lie within one block.

        The hot path of verify(): whole columns at a time in comprehensions, each record
        linked to the previous *stored* entry hash (all of which are checked), so no row
        waits for the one before it. Any doubt falls back to a row-by-row search.
        """
        seqs, contents, payloads, payload_digests, entry_hashes = zip(*rows)
        try:
            digests = [
                sha256(_RECORD % record).digest()
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

    def _first_break(self, rows: list[tuple]) -> _Broken:
        link, expected = self.link, self.size + 1
        for seq, content, payload, payload_digest, entry_hash in rows:
            try:
                intact = (
                    seq == expected
                    and sha256(_RECORD % (content, payload_digest, link, seq)).hexdigest().encode() == entry_hash
                    and (payload is None or sha256(payload).hexdigest().encode() == payload_digest)
                )
            except TypeError:
                intact = False
            if not intact:
                return _Broken(expected, link)
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
                raise _Broken(
                    (idx << level) + 1,
                    self.link,
                    f"the stored Merkle node over {_span(level, idx)} {state}: the node table was "
                    "altered (those entries hash correctly, but proofs over them would not verify)",
                )

    def root(self) -> bytes:
        return self.frontier.root(self.leaves)

    def take_over(self, half: _Half, split: int, stop: int | None) -> bytes | None:
        """Continue with the second half's result (its blocks, then its tail or its break), in the order one
        scan would have met them; returns the root at `stop` if that falls in the half."""
        if self.size != split or half.start_link != self.link:  # the first half's last entries are missing,
            raise _Broken(self.size + 1, self.link)  # or the halves did not meet at the same stored hash
        at_stop = None
        for block_root in half.block_roots:
            if stop is not None and self.size < stop <= self.size + BLOCK:
                at_stop = self.frontier.root(half.stop_leaves)
            self._push_block(block_root)
            self.size += BLOCK
        if half.broken is not None:  # after the blocks before it, whose stored nodes may break first
            raise _Broken(*half.broken)
        self.leaves, self.link, self.size = half.tail, half.link, half.size
        if stop is not None and self.size - len(self.leaves) < stop <= self.size:
            at_stop = self.frontier.root(half.stop_leaves)
        return at_stop

    def check_no_stray_nodes(self) -> None:
        if self.stored:
            level, idx = min(self.stored, key=lambda key: key[1] << key[0])
            raise _Broken(
                self.size + 1,
                self.link,
                f"a stored Merkle node covers {_span(level, idx)} but the log ends at entry "
                f"{self.size}: entries after {self.size} were removed, or the node table was altered",
            )


PARALLEL_FROM = 200_000  # entries: from here a second process verifying half the log saves more than it costs
HALF_LOCK_TIMEOUT = "10s"  # PostgreSQL: a lock the second half waits for may be queued behind this process's


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
    or its tail and last link; `stop_leaves` are the leaves from the start of the stop's block to the stop."""

    broken: tuple[int, bytes, str | None] | None
    start_link: bytes = b""
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
        self.stop, self.block_roots, self.stop_leaves = stop, [], []

    def add(self, rows: list[tuple]) -> None:
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

    def __init__(self, ledger: Ledger, split: int, size: int, stop: int | None, snapshot: str | None) -> None:
        context = multiprocessing.get_context("fork")
        self._results, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_verify_half,
            args=(ledger, split, size, stop, snapshot, sender),
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


def _verify_half(ledger: Ledger, split: int, size: int, stop: int | None, snapshot: str | None, sender) -> None:
    """In the forked process: its own connection (the parent's are never touched), reading the parent's
    snapshot on PostgreSQL, and giving up on a lock rather than waiting for one behind the parent's."""
    try:
        with create_engine(ledger.engine.url, poolclass=NullPool).connect() as conn:
            if snapshot is not None:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                if snapshot is not None:
                    if not re.fullmatch(r"[0-9A-F-]+", snapshot):
                        raise ValueError(f"unexpected snapshot id {snapshot!r}")
                    conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{HALF_LOCK_TIMEOUT}'")
                sender.send(_scan_half(ledger, conn, split, size, stop))
    except Exception as exc:  # handed to the parent, which raises it as a LedgerError
        sender.send(f"{type(exc).__name__}: {exc}")
    finally:
        sender.close()


def _scan_half(ledger: Ledger, conn: Connection, split: int, size: int, stop: int | None) -> _Half:
    e = ledger._entries.c
    link = conn.execute(select(ledger._bytes(e.entry_hash)).where(e.seq == split)).scalar()
    scan = _HalfScan(split, link, stop)
    cursor = ledger._scan_cursor(conn, split, size)
    try:
        while rows := cursor.fetchmany(scan.wanted(stop)):
            scan.add(rows)
    except _Broken as broken:
        return _Half(
            broken=(broken.seq, broken.link, broken.problem), start_link=link, block_roots=tuple(scan.block_roots)
        )
    finally:
        cursor.close()
    return _Half(None, link, tuple(scan.block_roots), tuple(scan.leaves), tuple(scan.stop_leaves), scan.link, scan.size)


def _describe_break(seq: int, link: str, rows: dict[int, tuple]) -> str:
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
        return sha256(_RECORD % (ncontent, npd, prev.encode(), nseq)).hexdigest().encode() == nhash

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


# --- the ledger ----------------------------------------------------------------------------


class Ledger:
    """The append-only audit ledger in the database at `url` (tables created if missing)."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self._entries, self._nodes = _tables(self.engine.dialect.name)
        require_current(self.engine, "governance")

    @classmethod
    def for_settings(cls, settings: Settings) -> Ledger:
        return cls(settings.ledger_url)

    # --- writing --------------------------------------------------------------------------
    def append(self, event: Event) -> LedgerEntry:
        """Append one governance event (see `governance.events`)."""
        return self._append([_validated(event.record(), f"{event.action} event")])[0]

    def append_many(self, events: Sequence[Event]) -> list[LedgerEntry]:
        """Append all events in one transaction, in order; a bad event appends none of them."""
        total = len(events)
        return self._append(
            [_validated(e.record(), f"{e.action} event {i} of {total}") for i, e in enumerate(events, 1)]
        )

    def append_record(
        self,
        *,
        actor: str,
        action: str,
        subject: dict,
        digests: dict[str, str] | None = None,
        facts: dict | None = None,
        payload: dict | None = None,
    ) -> LedgerEntry:
        """Append raw entry fields. The storage layer's own door, for its tests and benchmarks: governance code
        appends typed events (`append`), so that every action is declared once."""
        record = {
            "actor": actor,
            "action": action,
            "subject": subject,
            "digests": digests,
            "facts": facts,
            "payload": payload,
        }
        return self._append([_validated(record, "ledger event")])[0]

    def append_records(self, records: list[dict]) -> list[LedgerEntry]:
        """Raw entry fields, all in one transaction (see `append_record`); a bad one appends none of them."""
        total = len(records)
        return self._append([_validated(r, f"ledger event {i} of {total}") for i, r in enumerate(records, 1)])

    def _append(self, events: list[dict]) -> list[LedgerEntry]:
        if not events:
            return []
        rows, made = [], []
        with write_transaction(self.engine, LOCK) as conn:
            size, prev = self._head(conn)
            ts = utc_timestamp()  # taken under the lock, so time order follows sequence order
            for seq, event in enumerate(events, size + 1):
                content = entry_content(event | {"ts": ts})
                entry_hash = sha256(record_bytes(content, event["payload_digest"], prev, seq)).hexdigest()
                rows.append(
                    {
                        "seq": seq,
                        "content": content.decode(),
                        "payload": event["payload_bytes"].decode(),
                        "payload_digest": event["payload_digest"],
                        "entry_hash": entry_hash,
                    }
                )
                made.append(
                    LedgerEntry(
                        seq=seq,
                        payload=json.loads(event["payload_bytes"]),
                        payload_digest=event["payload_digest"],
                        prev_hash=prev,
                        entry_hash=entry_hash,
                        **json.loads(content),
                    )
                )
                prev = entry_hash
            conn.execute(insert(self._entries), rows)
            self._store_nodes(conn, size, size + len(rows))
        return made

    def _store_nodes(self, conn: Connection, old_size: int, new_size: int) -> None:
        """Store the Merkle nodes (256+ entries) that entries old_size+1..new_size complete."""
        if new_size // BLOCK == old_size // BLOCK:
            return
        tree = _TreeView(conn, self._entries, self._nodes, new_size)
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
            insert(self._nodes),
            [{"level": level, "idx": idx, "hash": digest.hex()} for (level, idx), digest in made.items()],
        )

    def expire_payloads(self, older_than: datetime) -> int:
        """Retention: drop the payloads of entries recorded before `older_than`; digests and chain stay."""
        if older_than.tzinfo is None:
            raise LedgerError("expire_payloads needs a timezone-aware datetime (UTC), got a naive one")
        e = self._entries.c
        with write_transaction(self.engine, LOCK) as conn:
            result = conn.execute(
                update(self._entries)
                .where(e.ts < utc_timestamp(older_than), e.payload.is_not(None))
                .values(payload=None)
            )
            return result.rowcount

    # --- reading --------------------------------------------------------------------------
    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """One consistent snapshot for several statements (WAL on SQLite, REPEATABLE READ on PostgreSQL)."""
        options = {} if is_sqlite(self.engine) else {"isolation_level": "REPEATABLE READ"}
        with self.engine.connect().execution_options(**options) as conn, conn.begin():
            yield conn

    def _bytes(self, column):
        """A text column as its stored bytes, undecoded (tampered, non-UTF-8 bytes still reach verify)."""
        if is_sqlite(self.engine):
            return cast(column, LargeBinary)
        return func.convert_to(column, literal("UTF8"))

    def _head(self, conn: Connection) -> tuple[int, str]:
        row = conn.execute(_head_query(self._entries)).first()
        return (row.seq, row.entry_hash) if row else (0, GENESIS)

    def _checked_size(self, conn: Connection, size: int | None) -> int:
        head = self._head(conn)[0]
        if size is None:
            return head
        if not 0 <= size <= head:
            raise LedgerError(f"the ledger has {head} entries; there is no tree of size {size}")
        return size

    @cached_property
    def _entry_query(self):
        """Entries with their predecessor's hash; built once (a statement is immutable, and building it cost
        about 1 ms a read: a third of `govern status` at 50 models)."""
        e, previous = self._entries.c, self._entries.alias("previous")
        prev_hash = select(previous.c.entry_hash).where(previous.c.seq == e.seq - 1).scalar_subquery()
        return select(e.seq, self._bytes(e.content), self._bytes(e.payload), e.payload_digest, e.entry_hash, prev_hash)

    @staticmethod
    def _entry_from_row(row, checked: bool | str) -> LedgerEntry:
        """An entry as stored; when `checked`, refused if its payload or fields no longer hash to what the chain
        recorded (a row edited in the database; the whole chain is `verify`'s to check, this the entry itself).
        `checked="facts"` refuses altered fields but reads an altered payload as gone: for decisions that rest on
        facts and digests only, so that an edited detail cannot stop them (verify still names it)."""
        seq, content, payload, payload_digest, entry_hash, prev_hash = row
        if checked == "facts" and payload is not None and sha256(payload).hexdigest() != payload_digest:
            payload = None
        if checked:
            if payload is not None and sha256(payload).hexdigest() != payload_digest:
                raise LedgerError(
                    f"entry {seq}: its payload does not hash to the digest the chain recorded; "
                    "run `govern ledger verify`"
                )
            if sha256(record_bytes(content, payload_digest, prev_hash or GENESIS, seq)).hexdigest() != entry_hash:
                raise LedgerError(f"entry {seq}: its fields do not hash to its entry hash; run `govern ledger verify`")
        try:
            fields = json.loads(content)
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
        except (TypeError, ValueError, KeyError) as exc:
            raise LedgerError(f"entry {seq} is unreadable ({exc!r}); run `govern ledger verify`") from None

    def entries(
        self,
        *,
        model: str | None = None,
        version: str | None = None,
        action: str | tuple[str, ...] | None = None,
        since_seq: int = 0,
        limit: int | None = None,
        checked: bool | str = True,
        before_seq: int | None = None,
    ) -> list[LedgerEntry]:
        """Entries after `since_seq` (and before `before_seq`) matching the filters, oldest first; `limit` keeps
        the most recent N.

        Each is refused (LedgerError) if it no longer hashes to what the chain recorded; `checked=False` gives
        entries as stored, to a caller that checks them itself (the lineage reports an altered entry)."""
        e = self._entries.c
        query = self._entry_query.where(e.seq > since_seq)
        if before_seq is not None:
            query = query.where(e.seq < before_seq)
        for column, value in ((e.model, model), (e.version, version)):
            if value is not None:
                query = query.where(column == value)
        if action is not None:
            query = query.where(e.action.in_(action) if isinstance(action, tuple) else e.action == action)
        query = query.order_by(e.seq.desc()).limit(limit) if limit else query.order_by(e.seq)
        with self._reading() as conn:
            rows = conn.execute(query).all()
        found = [self._entry_from_row(row, checked) for row in rows]
        return found[::-1] if limit else found

    def events(
        self,
        kinds: type[E] | tuple[type[E], ...],
        *,
        model: str | None = None,
        version: str | None = None,
        since_seq: int = 0,
        limit: int | None = None,
        checked: bool | str = True,
    ) -> list[E]:
        """Typed events of these kinds (and kinds derived from them), oldest first; filters as in `entries`."""
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        found = self.entries(
            model=model, version=version, action=actions(*kinds), since_seq=since_seq, limit=limit, checked=checked
        )
        return [
            kinds[0].from_entry(entry) if len(kinds) == 1 else Event.from_entry(entry)  # type: ignore[misc]
            for entry in found
        ]

    def latest(
        self,
        kinds: type[E] | tuple[type[E], ...],
        *,
        model: str | None = None,
        version: str | None = None,
        checked: bool | str = True,
    ) -> E | None:
        """The most recent event of these kinds, or None."""
        found = self.events(kinds, model=model, version=version, limit=1, checked=checked)
        return found[-1] if found else None

    def entry(self, seq: int) -> LedgerEntry:
        with self._reading() as conn:
            row = conn.execute(self._entry_query.where(self._entries.c.seq == seq)).first()
            if row is None:
                raise LedgerError(f"there is no entry {seq}; the ledger has {self._head(conn)[0]} entries")
        return self._entry_from_row(row, checked=True)

    def size(self) -> int:
        with self._reading() as conn:
            return self._head(conn)[0]

    def root(self, size: int | None = None) -> str:
        """Merkle root (hex) of the first `size` entries (default: all)."""
        with self._reading() as conn:
            size = self._checked_size(conn, size)
            tree = _TreeView(conn, self._entries, self._nodes, size)
            tree.preload(sizes=[size])
            return tree.subtree(0, size).hex()

    def inclusion_proof(self, seq: int, size: int | None = None) -> InclusionProof:
        with self._reading() as conn:
            size = self._checked_size(conn, size)
            if not 1 <= seq <= size:
                raise LedgerError(f"entry {seq} is not among the first {size} entries")
            tree = _TreeView(conn, self._entries, self._nodes, size)
            tree.preload(leaves=[seq - 1], sizes=[size])
            path = inclusion_path(seq - 1, size, tree.subtree)
            entry_hash = conn.execute(select(self._entries.c.entry_hash).where(self._entries.c.seq == seq)).scalar()
            return InclusionProof(
                seq=seq,
                size=size,
                entry_hash=entry_hash,
                path=tuple(p.hex() for p in path),
                root=tree.subtree(0, size).hex(),
            )

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        with self._reading() as conn:
            return self._consistency(conn, old_size, self._checked_size(conn, new_size))

    def _consistency(self, conn: Connection, old_size: int, new_size: int) -> ConsistencyProof:
        if not 0 <= old_size <= new_size:
            raise LedgerError(f"cannot prove a tree of {old_size} entries consistent with one of {new_size}")
        tree = _TreeView(conn, self._entries, self._nodes, new_size)
        tree.preload(leaves=[old_size - 1] if old_size else [], sizes=[old_size, new_size])
        path = consistency_path(old_size, new_size, tree.subtree)
        return ConsistencyProof(
            old_size=old_size,
            new_size=new_size,
            old_root=tree.subtree(0, old_size).hex(),
            new_root=tree.subtree(0, new_size).hex(),
            path=tuple(p.hex() for p in path),
        )

    # --- verification ---------------------------------------------------------------------
    def verify(self, checkpoint: Checkpoint | None = None) -> VerifyReport:
        """Recompute the chain, payload digests and Merkle tree from the stored bytes.

        Never raises on tampering: the report names the first entry that does not verify and
        the stored field at fault. With a checkpoint (whose signature the caller has checked),
        also proves the log extends it: root at checkpoint.size equals its root, plus a
        consistency proof from it to the current head. A large log is verified by two processes,
        a half each (see `_split`); the answer is the same as from one.
        """
        stop = checkpoint.size if checkpoint else None
        with self._reading() as conn:
            size = self._head(conn)[0]
            nodes = self._nodes.c
            scan = _Scan(
                {(lvl, idx): value for lvl, idx, value in conn.execute(select(nodes.level, nodes.idx, nodes.hash))}
            )
            at_checkpoint = scan.root() if stop == 0 else None
            split = _split(size)
            second = None if split is None else _SecondHalf(self, split, size, stop, self._exported_snapshot(conn))
            try:
                cursor = self._scan_cursor(conn, 0, split or size)
                try:
                    while rows := cursor.fetchmany(scan.wanted(stop)):
                        scan.add(rows)
                        if scan.size == stop:
                            at_checkpoint = scan.root()
                finally:
                    cursor.close()
                if second is not None:
                    at_half = scan.take_over(second.result(), split, stop)
                    at_checkpoint = at_checkpoint if at_half is None else at_half
                scan.check_no_stray_nodes()
            except _Broken as broken:
                problem = broken.problem or self._describe(conn, broken)
                return VerifyReport(ok=False, size=size, root=None, first_bad_seq=broken.seq, problem=problem)
            finally:
                if second is not None:
                    second.close()
            root = scan.root()
            unexplained = self._unexplained_expiry(conn, size)
            if unexplained is not None:
                return VerifyReport(
                    ok=False, size=size, root=root.hex(), first_bad_seq=unexplained[0], problem=unexplained[1]
                )
            if checkpoint is None:
                return VerifyReport(ok=True, size=size, root=root.hex())
            return self._against_checkpoint(conn, checkpoint, size, root, at_checkpoint)

    def _unexplained_expiry(self, conn: Connection, size: int) -> tuple[int, str] | None:
        """The first entry whose payload is gone although no later retention run's cut-off was past it: a
        payload removed by hand, not by retention (the chain cannot tell, since it hashes only the digest).
        A retention run itself must be credible: recorded no later than now, and its cut-off at least the
        shortest retention period before it; else it is reported as what explains nothing."""
        e = self._entries.c
        expired = conn.execute(select(e.seq, e.ts).where(e.payload.is_(None), e.seq <= size).order_by(e.seq)).all()
        if not expired:
            return None
        runs = []
        for seq, content in conn.execute(
            select(e.seq, e.content).where(e.action.in_(actions(RetentionApplied)), e.seq <= size).order_by(e.seq)
        ):
            entry = json.loads(content)
            cutoff = entry.get("facts", {}).get("ledger_payloads_before") or ""
            if problem := incredible_retention(entry["ts"], cutoff):
                return seq, f"entry {seq}: retention run {problem}"
            runs.append((seq, cutoff))
        for seq, ts in expired:
            if not any(run_seq > seq and ts < cutoff for run_seq, cutoff in runs):
                return seq, (
                    f"entry {seq}: its payload is gone, but no later retention run expired payloads "
                    f"recorded at {ts}: it was removed outside retention"
                )
        return None

    def _exported_snapshot(self, conn: Connection) -> str | None:
        """PostgreSQL: this transaction's snapshot, for the second half to read exactly what this one reads."""
        return None if is_sqlite(self.engine) else conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()

    def _scan_cursor(self, conn: Connection, after: int, last: int):
        """DBAPI cursor over (seq, content, payload, payload_digest, entry_hash) as bytes, in order, of the
        entries after `after` up to `last`.

        Raw DBAPI rows: SQLAlchemy Row objects double the cost of a 1M-entry verify (measured).
        """
        e = self._entries.c
        query = select(e.seq, *(self._bytes(c) for c in (e.content, e.payload, e.payload_digest, e.entry_hash)))
        query = query.where(e.seq > after, e.seq <= last).order_by(e.seq)
        sql = str(query.compile(dialect=self.engine.dialect, compile_kwargs={"literal_binds": True}))
        dbapi = conn.connection.dbapi_connection
        cursor = dbapi.cursor() if is_sqlite(self.engine) else dbapi.cursor(name="ledger_verify")
        cursor.execute(sql)
        return cursor

    def _describe(self, conn: Connection, broken: _Broken) -> str:
        e = self._entries.c
        columns = (e.content, e.payload, e.payload_digest, e.entry_hash)
        near = select(e.seq, *(self._bytes(c) for c in columns)).where(e.seq >= broken.seq)
        rows = {row[0]: tuple(row) for row in conn.execute(near.order_by(e.seq).limit(2))}
        return _describe_break(broken.seq, broken.link.decode(), rows)

    def _against_checkpoint(
        self, conn: Connection, checkpoint: Checkpoint, size: int, root: bytes, at_checkpoint: bytes | None
    ) -> VerifyReport:
        signed = f"the checkpoint signed by {checkpoint.signer} at {checkpoint.issued_at}"
        failed = dict(ok=False, size=size, root=root.hex(), checkpoint_size=checkpoint.size)
        if at_checkpoint is None:
            return VerifyReport(
                **failed,
                first_bad_seq=size + 1,
                problem=f"entry {size + 1} is missing: the log has {size} entries but {signed} "
                f"covers {checkpoint.size}: the tail was truncated",
            )
        if at_checkpoint.hex() != checkpoint.root:
            return VerifyReport(
                **failed,
                first_bad_seq=checkpoint.size,
                problem=f"entries 1..{checkpoint.size} no longer match {signed}: their Merkle root "
                f"is {at_checkpoint.hex()[:16]}…, signed {checkpoint.root[:16]}…; "
                f"history up to entry {checkpoint.size} was rewritten",
            )
        proof = self._consistency(conn, checkpoint.size, size)
        if not verify_consistency(checkpoint.size, size, at_checkpoint, root, [bytes.fromhex(p) for p in proof.path]):
            return VerifyReport(
                **failed,
                first_bad_seq=checkpoint.size + 1,
                problem=f"the stored Merkle nodes do not prove that entries after {checkpoint.size} extend {signed}",
            )
        return VerifyReport(ok=True, size=size, root=root.hex(), checkpoint_size=checkpoint.size, consistency=proof)
