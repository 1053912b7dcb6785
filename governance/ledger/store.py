"""The audit ledger: an append-only, hash-chained log of governance events with a Merkle tree.

`Ledger` is its API: appends, queries, proofs and verification; the package docstring names the
module that does each part (the hashed record format is in `governance.ledger.records`).

Appends take the ledger's write lock (`governance.db.write_transaction`): one writer at a
time across processes, so the chain never forks and no entry is lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache, cached_property
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Select, Table, insert, select, update

from governance.db import engine_for, is_sqlite, write_transaction
from governance.events import E, Event, actions
from governance.ledger import tree
from governance.ledger.dates import EntryDates
from governance.ledger.merkle import ConsistencyProof, InclusionProof
from governance.ledger.records import (
    GENESIS,
    LedgerEntry,
    LedgerError,
    ValidatedEvent,
    entry_content,
    entry_from_row,
    record_bytes,
    validated,
)
from governance.ledger.tables import definition_problem, ledger_tables, stored_bytes
from governance.ledger.verify import VerifyReport, verify_log
from governance.migrations import require_current
from governance.timestamps import utc_timestamp

if TYPE_CHECKING:
    from governance.ledger.checkpoint import Checkpoint
    from governance.settings import Settings

LOCK = "governance.ledger"
LAST_SEQ = 2**63 - 1  # the largest ledger sequence number a store can hold (a 64-bit integer column)


@cache
def _head_query(entries: Table) -> Select[Any]:
    """The last entry's seq and hash; built once (building a statement costs more than running it)."""
    return select(entries.c.seq, entries.c.entry_hash).order_by(entries.c.seq.desc()).limit(1)


# A redefined table is refused within this long of its redefinition (a check costs one catalog query).
DEFINITION_CHECK_SECONDS = 1.0


class Ledger:
    """The append-only audit ledger in the database at `url` (tables created if missing)."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self._entries, self._nodes = ledger_tables(self.engine.dialect.name)
        require_current(self.engine, "governance")
        self._definition_checked_at = float("-inf")
        self._dates = EntryDates()
        self._kept: dict[tuple, tuple[int, int, str, list[Event]]] = {}  # see `history`

    @classmethod
    def for_settings(cls, settings: Settings) -> Ledger:
        return cls(settings.ledger_url)

    # --- writing --------------------------------------------------------------------------
    def append(self, event: Event) -> LedgerEntry:
        """Append one governance event (see `governance.events`)."""
        return self._append([validated(event.record(), f"{event.action} event")])[0]

    def append_many(self, events: Sequence[Event]) -> list[LedgerEntry]:
        """Append all events in one transaction, in order; a bad event appends none of them."""
        total = len(events)
        return self._append(
            [validated(e.record(), f"{e.action} event {i} of {total}") for i, e in enumerate(events, 1)]
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
        return self._append([validated(record, "ledger event")])[0]

    def append_records(self, records: list[dict]) -> list[LedgerEntry]:
        """Raw entry fields, all in one transaction (see `append_record`); a bad one appends none of them."""
        total = len(records)
        return self._append([validated(r, f"ledger event {i} of {total}") for i, r in enumerate(records, 1)])

    def _append(self, events: list[ValidatedEvent]) -> list[LedgerEntry]:
        if not events:
            return []
        rows, made = [], []
        with write_transaction(self.engine, LOCK) as conn:
            size, prev = self._head(conn)
            ts = utc_timestamp()  # taken under the lock, so time order follows sequence order
            for seq, event in enumerate(events, size + 1):
                content = entry_content({**event, "ts": ts})
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
            if self._head(conn) != (size + len(rows), prev):
                raise LedgerError(
                    f"the database did not keep the {len(rows)} entry(ies) appended after entry {size} as written (a "
                    "trigger or rule on ledger_entries changed or dropped them); nothing was appended"
                )
            tree.store_nodes(conn, self._entries, self._nodes, size, size + len(rows))
        return made

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
    def _reading(self, check_definition: bool = True) -> Iterator[Connection]:
        """One consistent snapshot for several statements (WAL on SQLite, REPEATABLE READ on PostgreSQL), read only
        while the table is defined as the ledger defines it (checked at most every DEFINITION_CHECK_SECONDS)."""
        options = {} if is_sqlite(self.engine) else {"isolation_level": "REPEATABLE READ"}
        with self.engine.connect().execution_options(**options) as conn, conn.begin():
            if check_definition and time.monotonic() - self._definition_checked_at >= DEFINITION_CHECK_SECONDS:
                problem = definition_problem(conn)
                if problem:
                    raise LedgerError(f"{problem}; run `govern ledger verify`")
                self._definition_checked_at = time.monotonic()
            yield conn

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
    def _entry_query(self) -> Select[Any]:
        """Entries with their predecessor's hash; built once (a statement is immutable, and building it cost
        about 1 ms a read: a third of `govern status` at 50 models)."""
        e, previous = self._entries.c, self._entries.alias("previous")
        prev_hash = select(previous.c.entry_hash).where(previous.c.seq == e.seq - 1).scalar_subquery()
        dialect = self.engine.dialect.name
        content, payload = stored_bytes(dialect, e.content), stored_bytes(dialect, e.payload)
        return select(e.seq, content, payload, e.payload_digest, e.entry_hash, prev_hash)

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
        containing: str | None = None,
    ) -> list[LedgerEntry]:
        """Entries after `since_seq` (and before `before_seq`) matching the filters, oldest first; `limit` keeps
        the most recent N; `containing`: only entries whose stored content has this text (the database searches,
        nothing is parsed: a caller still checks what it finds, and an entry altered to leave the text out is
        not found, so the text only narrows a search whose misses the caller can tell apart).

        Each is refused (LedgerError) if it no longer hashes to what the chain recorded; `checked=False` gives
        entries as stored, to a caller that checks them itself (the lineage reports an altered entry)."""
        e = self._entries.c
        query = self._filtered(model, version, action, since_seq, before_seq)
        if containing is not None:
            query = query.where(e.content.contains(containing, autoescape=True))
        order: ColumnElement[Any] = e.seq
        if model is not None and action is not None and self.engine.dialect.name == "sqlite":
            # Ordered by the bare seq, SQLite walks the (model, seq) index and derives each entry's action from
            # its content (a virtual column: 58 kB to parse per decision seal, 0.17 s at 2,000 seals); ordered by
            # an expression, it finds the kinds in the (model, action, seq) index and sorts the few it found.
            order = e.seq + 0
        query = query.order_by(order.desc()).limit(limit) if limit else query.order_by(order)
        with self._reading() as conn:
            rows = conn.execute(query).all()
        found = [entry_from_row(row, checked) for row in rows]
        return found[::-1] if limit else found

    def _filtered(
        self,
        model: str | None,
        version: str | None,
        action: str | tuple[str, ...] | None,
        since_seq: int,
        before_seq: int | None,
    ) -> Select[Any]:
        e = self._entries.c
        query = self._entry_query.where(e.seq > since_seq)
        if before_seq is not None:
            query = query.where(e.seq < before_seq)
        for column, value in ((e.model, model), (e.version, version)):
            if value is not None:
                query = query.where(column == value)
        if action is not None:
            query = query.where(e.action.in_(action) if isinstance(action, tuple) else e.action == action)
        return query

    def events(
        self,
        kinds: type[E] | tuple[type[E], ...],
        *,
        model: str | None = None,
        version: str | None = None,
        since_seq: int = 0,
        limit: int | None = None,
        checked: bool | str = True,
        typed: bool = True,
        containing: str | None = None,
    ) -> list[E]:
        """Typed events of these kinds (and kinds derived from them), oldest first; filters as in `entries`;
        `typed` as in `Event.from_entry`."""
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        found = self.entries(
            model=model,
            version=version,
            action=actions(*kinds),
            since_seq=since_seq,
            limit=limit,
            checked=checked,
            containing=containing,
        )
        # Event.from_entry gives each entry's own type, one of `kinds` (the query asked for their actions only);
        # mypy cannot tell that the union of several kinds is E.
        return [
            kinds[0].from_entry(entry, typed) if len(kinds) == 1 else Event.from_entry(entry, typed)  # type: ignore[misc]
            for entry in found
        ]

    def history(
        self,
        kinds: type[E] | tuple[type[E], ...],
        *,
        model: str,
        version: str | None = None,
        since_seq: int = 0,
        checked: bool | str = True,
        typed: bool = True,
    ) -> list[E]:
        """`events(kinds, model=model, version=version, since_seq=since_seq, checked=checked, typed=typed)`, for a
        reader that asks again and again (serving's follower, at every poll): the events read before are kept, and
        each call reads only the entries appended since (and, asked for older ones than it kept, those), so a call
        costs what is new, not the model's whole history. If the entry the last call read through was replaced or
        removed since (the tail truncated or rewritten), it raises LedgerError, as `misdated` does; an entry edited
        in place before it is for `verify` to find, and for every fresh reader, which reads it again (a kept event
        stays as it was read, unless its entry was deleted or re-hashed: then every event is read again)."""
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        wanted = (actions(*kinds), model, version, checked, typed)
        start, through, through_hash, kept = self._kept.get(wanted, (since_seq, since_seq, "", []))
        if since_seq < start:
            start, through, through_hash, kept = since_seq, since_seq, "", []
        with self._reading() as conn:
            head, head_hash = self._head(conn)
            rows: Sequence[Any] = ()
            moved = (head, head_hash) != (through, through_hash)  # else nothing was appended: the tail still reads
            if moved and through and through_hash and self._hash_of(conn, through) != through_hash:
                raise LedgerError(
                    f"ledger entry {through}, read before, was removed or replaced since: the ledger was truncated "
                    "or rewritten under a running reader; run `govern ledger verify` against a signed checkpoint"
                )
            if kept and not self._still_there(conn, kept):  # one read before was deleted or re-hashed: read afresh
                start, through, through_hash, kept = since_seq, since_seq, "", []
            if (head, head_hash) != (through, through_hash):
                query = self._filtered(model, version, wanted[0], through, head + 1).order_by(self._entries.c.seq)
                rows = conn.execute(query).all()
        new = [Event.from_entry(entry_from_row(row, checked), typed) for row in rows]
        kept = kept + new if new else kept
        self._kept[wanted] = (start, head, head_hash, kept)
        # the query asked for these kinds' actions only, so each kept event is one of them
        return [e for e in kept if e.seq > since_seq]  # type: ignore[misc]

    def _still_there(self, conn: Connection, kept: list) -> bool:
        """Whether every kept event's entry is still in the ledger with the hash it was read with: a deleted
        rollback completion must not stay in force for a long-lived reader (one indexed lookup per kept event)."""
        c = self._entries.c
        found = dict(conn.execute(select(c.seq, c.entry_hash).where(c.seq.in_([e.seq for e in kept]))).tuples().all())
        return all(found.get(e.seq) == e.entry_hash for e in kept)

    def _hash_of(self, conn: Connection, seq: int) -> str | None:
        c = self._entries.c
        return conn.execute(select(c.entry_hash).where(c.seq == seq)).scalar()

    def latest(
        self,
        kinds: type[E] | tuple[type[E], ...],
        *,
        model: str | None = None,
        version: str | None = None,
        checked: bool | str = True,
        typed: bool = True,
    ) -> E | None:
        """The most recent event of these kinds, or None."""
        found = self.events(kinds, model=model, version=version, limit=1, checked=checked, typed=typed)
        return found[-1] if found else None

    def misdated(self) -> frozenset[int]:
        """Entries dated more than the clock skew before an entry appended earlier, or ahead of now. The ledger
        dates each entry as it appends it, so such a date was set by hand (back to when a statement was still
        valid, say). Each call reads the dates of the entries appended since the last call only; if the entry it
        read last was replaced or removed since (the tail truncated or rewritten), it raises LedgerError: what
        this reader relied on is gone, and only a fresh reader (and `govern ledger verify` with a checkpoint)
        can judge the ledger as it now stands."""
        c = self._entries.c
        dates = self._dates
        with self._reading() as conn:
            rows = conn.execute(select(c.seq, c.ts, c.entry_hash).where(c.seq >= dates.through).order_by(c.seq)).all()
        if not dates.still_reads(rows[0] if rows else None):
            raise LedgerError(
                f"ledger entry {dates.through}, read before, was removed or replaced since: the ledger was truncated "
                "or rewritten under a running reader; run `govern ledger verify` against a signed checkpoint"
            )
        return dates.add(rows)

    def entry(self, seq: int) -> LedgerEntry:
        with self._reading() as conn:
            row = conn.execute(self._entry_query.where(self._entries.c.seq == seq)).first()
            if row is None:
                raise LedgerError(f"there is no entry {seq}; the ledger has {self._head(conn)[0]} entries")
        return entry_from_row(row, checked=True)

    def size(self) -> int:
        with self._reading() as conn:
            return self._head(conn)[0]

    def root(self, size: int | None = None) -> str:
        """Merkle root (hex) of the first `size` entries (default: all)."""
        with self._reading() as conn:
            return tree.root(conn, self._entries, self._nodes, self._checked_size(conn, size))

    def inclusion_proof(self, seq: int, size: int | None = None) -> InclusionProof:
        with self._reading() as conn:
            return tree.inclusion_proof(conn, self._entries, self._nodes, seq, self._checked_size(conn, size))

    def inclusion_proofs(self, seqs: Iterable[int], size: int | None = None) -> dict[int, InclusionProof]:
        """The inclusion proof of each of `seqs`, read together (`tree.inclusion_proofs`)."""
        with self._reading() as conn:
            return tree.inclusion_proofs(conn, self._entries, self._nodes, seqs, self._checked_size(conn, size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        with self._reading() as conn:
            return tree.consistency_proof(
                conn, self._entries, self._nodes, old_size, self._checked_size(conn, new_size)
            )

    # --- verification ---------------------------------------------------------------------
    def verify(self, checkpoint: Checkpoint | None = None) -> VerifyReport:
        """Recompute the chain, payload digests and Merkle tree from the stored bytes.

        Never raises on tampering: the report names the first entry that does not verify and
        the stored field at fault. With a checkpoint (whose signature the caller has checked),
        also proves the log extends it: root at checkpoint.size equals its root, plus a
        consistency proof from it to the current head. A large log is verified by two processes,
        a half each (see `governance.ledger.scan`); the answer is the same as from one.
        """
        with self._reading(check_definition=False) as conn:
            problem = definition_problem(conn)
            if problem:
                return VerifyReport(ok=False, size=self._head(conn)[0], root=None, first_bad_seq=None, problem=problem)
            return verify_log(conn, self._entries, self._nodes, self._head(conn)[0], checkpoint)
