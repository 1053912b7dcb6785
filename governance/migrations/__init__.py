"""Schema migrations of our own stores, with Alembic.

Two schemas, each with its own script directory and version table, because the
embedded default keeps them in two SQLite files and production in one
PostgreSQL database:

- `governance`: ledger, signed statements, control state (deployments, kill
  switches) and monitoring leases (`Settings.ledger_url`);
- `decisions`: the decision log (`Settings.decisions_url`).

`upgrade` is what `govern db upgrade` runs: under the store's write lock, so two
upgrades at once run one after the other and the second finds nothing to do.
Stores call `require_current` when they open: SQLite (the single-machine
embedded default) upgrades itself there; PostgreSQL refuses to work on a schema
that is not at head and names the command that upgrades it, so no production
process ever changes the schema as a side effect of starting first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from governance.db import engine_for, is_sqlite, write_transaction
from governance.errors import GovernanceError

SCHEMAS = ("governance", "decisions")
_HERE = Path(__file__).resolve().parent
_ALEMBIC = threading.Lock()  # Alembic's `context` is process-global: one migration run per process at a time


class SchemaNotCurrent(GovernanceError):
    """A PostgreSQL store's schema is not the one this code needs."""


@dataclass(frozen=True)
class SchemaState:
    schema: str
    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head

    def to_dict(self) -> dict:
        return {"schema": self.schema, "current": self.current, "head": self.head, "is_current": self.is_current}


def version_table(schema: str) -> str:
    return f"alembic_version_{schema}"


def _config(schema: str, connection: Connection | None = None) -> Config:
    if schema not in SCHEMAS:
        raise ValueError(f"unknown schema {schema!r}; known: {', '.join(SCHEMAS)}")
    config = Config()
    config.set_main_option("script_location", str(_HERE / schema))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = version_table(schema)
    return config


@cache
def head(schema: str) -> str:
    revision = ScriptDirectory.from_config(_config(schema)).get_current_head()
    if revision is None:
        raise RuntimeError(f"the {schema} migrations have no head revision")
    return revision


def _current(connection: Connection, schema: str) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": version_table(schema)})
    return context.get_current_revision()


def state(url: str, schema: str) -> SchemaState:
    """Where `schema` stands in the database at `url` (reads only)."""
    with engine_for(url).connect() as conn:
        return SchemaState(schema, _current(conn, schema), head(schema))


def upgrade(url: str, schema: str) -> SchemaState:
    """Bring `schema` to head; returns the state it was in before. Serialised by the store's write lock."""
    engine = engine_for(url)
    with _ALEMBIC, write_transaction(engine, f"migrations_{schema}") as conn:
        before = SchemaState(schema, _current(conn, schema), head(schema))
        if not before.is_current:
            command.upgrade(_config(schema, conn), "head")
    _checked.cache_clear()
    return before


def require_current(engine: Engine, schema: str) -> None:
    """Raise SchemaNotCurrent unless `schema` is at head (SQLite is upgraded instead; see the module doc)."""
    _checked(engine, schema)


@cache
def _checked(engine: Engine, schema: str) -> None:
    url = engine.url.render_as_string(hide_password=False)
    found = state(url, schema)
    if found.is_current:
        return
    if is_sqlite(engine):
        upgrade(url, schema)
        return
    where = engine.url.render_as_string(hide_password=True)
    raise SchemaNotCurrent(
        f"the {schema} schema of {where} is at {found.current or 'no migration (empty or created before migrations)'}"
        f", this code needs {found.head}: run `govern db upgrade` (see docs/operations.md, Upgrades)"
    )
