"""The ledger's tables (in the governance database; SQLite by default, PostgreSQL by URL).

- ledger_entries(seq, content, payload, payload_digest, entry_hash) and the columns
  model, version, action, ts, which the database generates from `content` for queries:
  nothing a writer can set apart from the hashed bytes (virtual in SQLite; stored in
  PostgreSQL, which refuses updates to them);
- ledger_nodes(level, idx, hash): every complete Merkle subtree of 256 or more entries,
  written in the transaction that completes it, so a proof reads about log2(n) rows.

The migrations under `governance/migrations/governance` create them; these definitions are what the code
queries (and what the migration tests compare the database with).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ColumnElement,
    Computed,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    cast,
    func,
    literal,
    text,
)

# Query columns the database derives from `content`: name -> JSON path.
_DERIVED = {"model": ("subject", "model"), "version": ("subject", "version"), "action": ("action",), "ts": ("ts",)}


def _derived_column(dialect: str, name: str) -> Column:
    path = _DERIVED[name]
    if dialect == "sqlite":
        return Column(name, Text, Computed(f"json_extract(content, '$.{'.'.join(path)}')", persisted=False))
    return Column(name, Text, Computed(f"(content::jsonb #>> '{{{','.join(path)}}}')", persisted=True))


@cache
def ledger_tables(dialect: str) -> tuple[Table, Table]:
    """The tables (ledger_entries, ledger_nodes) as the database of this dialect has them."""
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


def stored_bytes(dialect: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A text column as its stored bytes, undecoded (tampered, non-UTF-8 bytes still reach verify)."""
    if dialect == "sqlite":
        return cast(column, LargeBinary)
    return func.convert_to(column, literal("UTF8"))
