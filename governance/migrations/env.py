"""What every schema's Alembic env.py runs: migrations on the connection `upgrade` holds, in its transaction."""

from __future__ import annotations

from alembic import context

# How long a migration on PostgreSQL waits for a table lock (ALTER TABLE queues every write behind it)
# before it gives up, rather than hold the scoring API's writes for as long as a long reader lasts.
LOCK_TIMEOUT = "5s"


def run() -> None:
    config = context.config
    connection = config.attributes["connection"]
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    context.configure(connection=connection, version_table=config.attributes["version_table"])
    with context.begin_transaction():
        context.run_migrations()
