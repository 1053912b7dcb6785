"""Copies of the lineage world and `govern` on them. The worlds themselves (`world`, `pg_world`, `any_world`) are
session fixtures in tests/conftest.py: the lineage tests and the attack suite (tests/attacks) share one per backend."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import sqlalchemy
from typer.testing import CliRunner

from programs.cli import app
from tests.conftest import POSTGRES_ADMIN_URL
from tests.lineage.world import World


def copy_of(world: World, home: Path):
    """Settings for a copy of the world (state dir, and each PostgreSQL database it has), for tests that change
    what cannot be undone."""
    shutil.copytree(world.settings.home, home)
    settings = replace(world.settings, home=home)
    if settings.roster_override:
        settings = replace(settings, roster_override=home / settings.roster_override.relative_to(world.settings.home))
    for store in ("database_url", "mlflow_tracking_uri", "dagster_database_url"):
        if getattr(settings, store):
            settings = replace(settings, **{store: _copy_database(getattr(settings, store))})
    return settings


COPIES: list[str] = []  # the databases copied in this session (their idle connections are closed after each test)


def _copy_database(url: str) -> str:
    """A new database with `url`'s content (pg_dump into it: the source may have open sessions), dropped at the
    end of the session with the others of its name."""
    source = url.rsplit("/", 1)[1]
    name = f"{source}_copy_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    copy = url.rsplit("/", 1)[0] + f"/{name}"
    COPIES.append(name)
    plain = lambda u: u.replace("postgresql+psycopg://", "postgresql://")  # noqa: E731 (libpq takes no driver)
    dump = subprocess.run(["pg_dump", "--no-owner", plain(url)], check=True, capture_output=True)
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", plain(copy)], input=dump.stdout, check=True, capture_output=True
    )
    return copy


def govern(settings, *args):
    """Run `govern` on a state dir as a user would (settings from options and the environment)."""
    base = ["--home", str(settings.home), "--config", str(settings.config_path)]
    env = {
        "GOVERN_POLICIES": str(settings.policies_dir),
        "GOVERN_DATABASE_URL": settings.database_url or "",
        "GOVERN_ROSTER": str(settings.roster_override or ""),
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,  # None: unset (the state dir's MLflow)
        "GOVERN_DAGSTER_DATABASE_URL": settings.dagster_database_url,
    }
    return CliRunner(env=env).invoke(app, base + [str(a) for a in args])
