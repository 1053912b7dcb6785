"""Shared fixtures: an isolated state dir per test, a real PostgreSQL when present, and the lineage world (one
governed history per database backend for the whole session)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


@pytest.fixture(autouse=True)
def copied_databases_released():
    """A test on a copy of the lineage world's PostgreSQL database leaves the pools of the stores it opened
    until they are collected; a few hundred such tests exhaust the server's connection slots. Their idle
    connections are closed after each test (a pool checks a connection before use and reconnects)."""
    yield
    from tests.lineage.conftest import COPIES

    if not COPIES:
        return
    import sqlalchemy

    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            sqlalchemy.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = ANY(:names) AND state = 'idle' AND pid <> pg_backend_pid()"
            ),
            {"names": COPIES},
        )
    admin.dispose()


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
def empty_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    with new_postgres_database("govern_test") as url:
        yield url


@contextmanager
def new_postgres_database(prefix: str, *, template: str | None = None, schemas: bool = False) -> Iterator[str]:
    """The URL of a new PostgreSQL database named `<prefix>_<random>`: a copy of `template` when given, with the
    governance schemas at head when `schemas` (as a platform engineer's `govern db upgrade` makes them). On exit
    it is dropped with every database whose name starts with its own (its copies). Skips the test, saying why,
    where the server is unreachable."""
    import sqlalchemy

    from governance import migrations
    from governance.db import engine_for

    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    for schema in migrations.SCHEMAS if schemas else ():
        migrations.upgrade(url, schema)
    try:
        yield url
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            found = conn.exec_driver_sql("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{name}%",))
            for (database,) in found.all():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def lifecycle(tmp_path: Path):
    """Build a Lifecycle (state dir + its Dagster instance + Definitions) for a config file."""
    from tests.helpers import SMALL_CONFIG, Lifecycle

    def build(config_path: Path = SMALL_CONFIG) -> Lifecycle:
        return Lifecycle(tmp_path / "govern", config_path)

    return build


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """The lineage world (tests/lineage/world.py) on the embedded default (SQLite), built once for the session (about
    a minute): the lineage tests read it, the attack suite and any test that changes it works on a copy
    (`tests.lineage.conftest.copy_of`)."""
    from tests.lineage.world import build_world

    return build_world(tmp_path_factory.mktemp("lineage") / "govern")


@pytest.fixture(scope="session")
def pg_world(tmp_path_factory):
    """The same history with the governance stores on PostgreSQL (the production configuration); its copies
    (`<name>_copy_*`) are dropped with it at the end of the session."""
    from tests.lineage.world import build_world

    with new_postgres_database("govern_lineage", schemas=True) as url:
        yield build_world(tmp_path_factory.mktemp("lineage-pg") / "govern", database_url=url)


@pytest.fixture(scope="session")
def production_world(tmp_path_factory):
    """The same history with every store on a PostgreSQL database of its own, as docs/operations.md sets up
    production: the governance stores, MLflow's tracking and registry store, and Dagster's storage."""
    from tests.lineage.world import build_world

    with (
        new_postgres_database("govern_production", schemas=True) as governance,
        new_postgres_database("govern_production_mlflow") as mlflow,
        new_postgres_database("govern_production_dagster") as dagster,
    ):
        home = tmp_path_factory.mktemp("lineage-production") / "govern"
        yield build_world(home, database_url=governance, mlflow_tracking_uri=mlflow, dagster_database_url=dagster)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_world(request):
    """The lineage world on each backend."""
    return request.getfixturevalue("world" if request.param == "sqlite" else "pg_world")


@pytest.fixture(params=["in one process", "in two processes"])
def verifying(request, monkeypatch) -> str:
    """Verify as for a small log (one process) and as the CLI does for a large one (a forked process takes the
    second half), on the test's own small log."""
    if request.param == "in two processes":
        from governance.ledger import scan

        monkeypatch.setattr(scan, "PARALLEL_FROM", 1)
        monkeypatch.setattr(scan, "_forking_is_safe", lambda: True)
    return request.param
