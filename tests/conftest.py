"""Shared fixtures: an isolated state dir per test, and a real PostgreSQL when present."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from governance.settings import Settings, apply_offline_env

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
POSTGRES_ADMIN_URL = os.environ.get("GOVERN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

apply_offline_env()


@pytest.fixture(autouse=True)
def no_dagster_context_left_open():
    """A sensor or schedule context built on an instance and never closed leaves that instance installed as
    Dagster's defs-state storage, and every later Definitions load in the session fails once it is collected:
    the test that leaves one open fails here, not some test far after it."""
    yield
    from dagster._core.storage.defs_state.base import DefsStateStorage

    left = DefsStateStorage.get()
    assert left is None, f"a Dagster context was left open (defs-state storage {left!r}): close it or use `with`"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh embedded-default state dir, with the repository's governance.yaml."""
    return Settings(home=tmp_path / "govern", config_path=REPO / "governance.yaml")


@pytest.fixture
def postgres_url(empty_postgres_url: str) -> str:
    """A new PostgreSQL database for one test with the governance schemas at head (`govern db upgrade`)."""
    from governance import migrations

    for schema in migrations.SCHEMAS:
        migrations.upgrade(empty_postgres_url, schema)
    return empty_postgres_url


@pytest.fixture
def empty_postgres_url() -> str:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = f"govern_test_{uuid.uuid4().hex[:12]}"
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sqlalchemy.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    from governance.db import engine_for

    engine_for(url).dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def lifecycle(tmp_path: Path):
    """Build a Lifecycle (state dir + its Dagster instance + Definitions) for a config file."""
    from tests.helpers import SMALL_CONFIG, Lifecycle

    def build(config_path: Path = SMALL_CONFIG) -> Lifecycle:
        return Lifecycle(tmp_path / "govern", config_path)

    return build
