"""Alembic environment of the decisions schema."""

from governance.migrations.env import run

run()
