"""SQLAlchemy engines for the governance stores (ledger, statements, decision log).

SQLite by default (one file per store under the state dir), PostgreSQL in
production; the URL decides. SQLite gets WAL, a busy timeout and full fsync on
commit so that concurrent processes wait rather than fail and a committed
entry survives a crash. `write_transaction` is the one way to take a store's
write lock (BEGIN IMMEDIATE on SQLite, a transaction-scoped advisory lock on
PostgreSQL).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, CursorResult, Engine, String, TypeDecorator, create_engine, event, text
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.engine import make_url

from governance.timestamps import parse_utc, utc_timestamp

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A PostgreSQL that does not answer (a dropped network, a hung server) fails a new connection after this,
# rather than holding a request until TCP gives up minutes later.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5


@cache
def engine_for(url: str) -> Engine:
    """One pooled engine per URL and process."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url, pool_pre_ping=True, connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}
        )
    if parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None hands transaction control to SQLAlchemy's "begin" event below
    # (the pysqlite recipe in the SQLAlchemy docs), so BEGIN IMMEDIATE is possible.
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "isolation_level": None})
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine, lock_name: str) -> Iterator[Connection]:
    """A transaction that holds `lock_name`'s write lock from its first statement to commit."""
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        if not is_sqlite(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(lock_name.encode())})
        yield conn


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def inserted_id(result: CursorResult) -> int:
    """The primary key the database gave the one row an INSERT added."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT returned no primary key")
    return key[0]


class UtcTimestamp(TypeDecorator):
    """A UTC instant that Python code sees as its `utc_timestamp` text: timestamptz on PostgreSQL (8 bytes,
    ordered, indexable as time), the same ISO-8601 text on SQLite (which sorts as time)."""

    impl = String(40)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(String(40))

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name != "postgresql":
            return value
        return parse_utc(value)

    def process_result_value(self, value, dialect):
        return utc_timestamp(value) if value is not None and dialect.name == "postgresql" else value
