"""docs/operations.md's backup and restore runbook, to the letter, on the production configuration: a signed
checkpoint, then `pg_dump` of Dagster's, the governance and MLflow's databases in that order, then a `tar` of the
state dir; restored into new databases and a new directory with the originals gone, everything verifies, serving
answers from the champion of the backup, and a restore that lost later entries is caught by the signed checkpoint
taken after them."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from dataclasses import replace

import dagster as dg
import httpx
import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from governance.config import load_config
from governance.release.kill_switch import set_kill_switch
from governance.release.services import Services
from governance.serving.app import create_app
from governance.trust.keys import load_private_key
from programs.instance import open_instance
from tests.conftest import POSTGRES_ADMIN_URL
from tests.helpers import RunningAPI
from tests.lineage.conftest import copy_of, govern
from tests.lineage.world import MODEL, World, database_env, served_decisions
from tests.serving.conftest import bearer

pytestmark = pytest.mark.skipif(shutil.which("pg_dump") is None, reason="no pg_dump/pg_restore on PATH")

# The runbook's order: Dagster's storage, then the governance database, then MLflow's (see docs/operations.md).
STORES = ("dagster_database_url", "database_url", "mlflow_tracking_uri")


def libpq(url: str) -> str:
    """The URL as the PostgreSQL client programs take it (no SQLAlchemy driver name)."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


@pytest.fixture
def fresh_databases():
    """Names for the runbook's `createdb`, dropped after the test."""
    names = {store: f"govern_restored_{uuid.uuid4().hex[:8]}_{n}" for n, store in enumerate(STORES)}
    yield names
    drop(*names.values())


def drop(*databases: str) -> None:
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        for database in databases:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def status(settings) -> dict:
    result = govern(settings, "status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)[0]


def run_count(settings) -> int:
    """How many runs Dagster's storage holds (its dagster.yaml names the URL's variable)."""
    with database_env(settings), open_instance(settings) as instance:
        return len(instance.get_run_records(dg.RunsFilter()))


def test_a_restored_backup_verifies_alone_and_a_later_checkpoint_shows_what_it_lost(
    production_world: World, tmp_path, fresh_databases
):
    live = copy_of(production_world, tmp_path / "live" / "govern")  # production, backed up and then lost
    before, runs = status(live), run_count(live)
    decision = production_world.decisions["after_rollback"][0]["decision_id"]

    # Backup: a signed checkpoint, the databases in the runbook's order, then the state dir.
    at_backup = govern(live, "ledger", "checkpoint", "--out", tmp_path / "checkpoints" / "backup.json")
    assert at_backup.exit_code == 0, at_backup.output
    dumps = {store: tmp_path / f"{store}.dump" for store in STORES}
    for store in STORES:
        run("pg_dump", "--format=custom", "--file", str(dumps[store]), libpq(getattr(live, store)))
    archive = tmp_path / "state.tar.gz"
    run("tar", "-czf", str(archive), "-C", str(live.home.parent), live.home.name)

    # Production goes on after the backup: the kill switch goes on, then the scheduled signed checkpoint.
    key = load_private_key(live.keys_dir / "bea.key")
    set_kill_switch(Services(live), MODEL, True, "bea", key, "fraud ring suspected")
    later = govern(live, "ledger", "checkpoint", "--out", tmp_path / "checkpoints" / "later.json")
    assert later.exit_code == 0, later.output

    # Restore into new databases and a new directory; the originals are gone.
    server = libpq(POSTGRES_ADMIN_URL)
    urls = {}
    for store, name in fresh_databases.items():
        run("createdb", "--maintenance-db", server, name)
        urls[store] = server.rsplit("/", 1)[0] + f"/{name}"
        run(
            "pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname", urls[store], str(dumps[store])
        )
    (tmp_path / "restored").mkdir()
    run("tar", "-xzf", str(archive), "-C", str(tmp_path / "restored"))
    shutil.rmtree(tmp_path / "live")
    drop(*(sqlalchemy.make_url(getattr(live, store)).database for store in STORES))
    home = tmp_path / "restored" / "govern"
    restored = replace(live, home=home, roster_override=home / "roster.yaml", **urls)

    upgraded = govern(restored, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert govern(restored, "db", "current").exit_code == 0
    verified = govern(restored, "ledger", "verify", "--checkpoint", tmp_path / "checkpoints" / "backup.json")
    assert verified.exit_code == 0 and "extends the checkpoint" in verified.output, verified.output
    after = status(restored)
    assert (after["champion"], after["kill_switch"]["on"]) == (before["champion"], False)  # as at the backup
    assert after["incidents"] == []
    lineage = govern(restored, "lineage", MODEL, str(before["champion"]))
    assert lineage.exit_code == 0, lineage.output
    traced = govern(restored, "trace", decision)
    assert traced.exit_code == 0, traced.output
    assert run_count(restored) == runs  # Dagster's history came back with it
    config = load_config(restored.config_path)
    with (
        RunningAPI(create_app(restored, config, poll_seconds=0.1)) as api,
        httpx.Client(base_url=api.url, headers=bearer(restored), timeout=30) as client,
    ):
        served_decisions(client, config, before["champion"], 1, seed=31)  # from the backup's champion

    # The kill switch set after the backup is not in the restored ledger: the checkpoint says entries are gone.
    extends = govern(restored, "ledger", "verify", "--checkpoint", tmp_path / "checkpoints" / "later.json")
    assert extends.exit_code == 1, extends.output
    assert "the tail was truncated" in extends.output, extends.output
