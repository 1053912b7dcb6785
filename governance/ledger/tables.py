"""The ledger's tables (in the governance database; SQLite by default, PostgreSQL by URL).

- ledger_entries(seq, content, payload, payload_digest, entry_hash) and the columns
  model, version, action, ts, which the database generates from `content` for queries:
  nothing a writer can set apart from the hashed bytes (virtual in SQLite; stored in
  PostgreSQL, which refuses updates to them);
- ledger_nodes(level, idx, hash): every complete Merkle subtree of 256 or more entries,
  written in the transaction that completes it, so a proof reads about log2(n) rows.

The migrations under `governance/migrations/governance` create them; these definitions are what the code
queries (and what the migration tests compare the database with).

Whoever can write the database can also redefine a derived column (PostgreSQL's `ALTER COLUMN ... DROP
EXPRESSION`, a rebuilt SQLite table) or hide rows (row-level security): every query that finds entries by
model, version or action would then miss an entry whose hashed bytes still verify. `definition_problem` holds
the table's definition, as the database reports it, against the one here; the ledger checks it before it
reads (`Ledger._reading`) and in `verify`.
"""

from __future__ import annotations

import re
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
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable

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
        Index("ix_ledger_entries_model_action", "model", "action", "seq"),  # a model's events of a kind
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


_PG_DEFINITION = text(
    "SELECT a.attname, a.attgenerated, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
    "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    "WHERE a.attrelid = 'ledger_entries'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
)
_PG_RELATION = text(
    "SELECT relkind, relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'ledger_entries'::regclass"
)


def definition_problem(conn: Connection) -> str | None:
    """Why the database's ledger_entries is not the table defined here (a derived column redefined, rows hidden
    from queries, a view in its place); None when it is."""
    if conn.dialect.name == "sqlite":
        return _sqlite_problem(conn)
    return _postgresql_problem(conn)


def _sqlite_problem(conn: Connection) -> str | None:
    stored = conn.execute(text("SELECT type, sql FROM sqlite_master WHERE name = 'ledger_entries'")).all()
    if [(kind, _normal(sql or "")) for kind, sql in stored] != [("table", _sqlite_definition())]:
        return "the ledger_entries table is not defined as the ledger defines it (its derived columns were redefined)"
    return None


@cache
def _sqlite_definition() -> str:
    """The CREATE TABLE of ledger_entries as SQLite stores it (compiled once: it is compared at every check)."""
    from sqlalchemy.dialects import sqlite

    return _normal(str(CreateTable(ledger_tables("sqlite")[0]).compile(dialect=sqlite.dialect())))


def _postgresql_problem(conn: Connection) -> str | None:
    kind, row_security, forced = conn.execute(_PG_RELATION).one()
    if kind != "r" or row_security or forced:
        return "ledger_entries is not a plain table (a view, or row-level security hides rows from queries)"
    generated = {name: (flag, expression) for name, flag, expression in conn.execute(_PG_DEFINITION)}
    for name, path in _DERIVED.items():
        wanted = f"((content)::jsonb #>> '{{{','.join(path)}}}'::text[])"
        if generated.get(name) != ("s", wanted):
            return f"the ledger_entries column {name!r} is no longer derived from the hashed content (redefined)"
    return None


def _normal(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()
