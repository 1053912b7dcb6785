"""Alembic environment of the governance schema."""

from governance.migrations.env import run

run()
