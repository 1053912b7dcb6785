"""docs/operations.md's backup and restore runbook, to the letter, on PostgreSQL: `pg_dump` of the
governance database and a `tar` of the state dir; restored into a new database and directory with the
originals gone, everything verifies and production is what the ledger said at the backup; a restore that
lost later entries is caught by the signed checkpoint taken after them."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from dataclasses import replace

import pytest

from governance.release.kill_switch import set_kill_switch
from governance.release.services import Services
from governance.trust.keys import load_private_key
from tests.conftest import POSTGRES_ADMIN_URL
from tests.lineage.conftest import copy_of, govern
from tests.lineage.world import MODEL, World

pytestmark = pytest.mark.skipif(shutil.which("pg_dump") is None, reason="no pg_dump/pg_restore on PATH")


def libpq(url: str) -> str:
    """The URL as the PostgreSQL client programs take it (no SQLAlchemy driver name)."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def new_database() -> str:
    """An empty database, as the runbook's `createdb`; dropped with the lineage world's copies."""
    source = libpq(POSTGRES_ADMIN_URL)
    name = f"govern_lineage_restore_{uuid.uuid4().hex[:8]}_copy_0"  # pg_world drops *_copy_* at the end
    run("createdb", "--maintenance-db", source, name)
    return source.rsplit("/", 1)[0] + f"/{name}"


def status(settings) -> dict:
    result = govern(settings, "status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)[0]


def test_a_restored_backup_verifies_alone_and_a_later_checkpoint_shows_what_it_lost(pg_world: World, tmp_path):
    live = copy_of(pg_world, tmp_path / "live" / "govern")  # production, which is backed up and then lost
    before = status(live)
    decision = pg_world.decisions["after_rollback"][0]["decision_id"]

    # Backup: the databases first, then the state dir (every file a row names is written before the row).
    dump, archive = tmp_path / "governance.dump", tmp_path / "state.tar.gz"
    run("pg_dump", "--format=custom", "--file", str(dump), libpq(live.database_url))
    run("tar", "-czf", str(archive), "-C", str(live.home.parent), live.home.name)

    # Production goes on after the backup: the kill switch goes on, then the scheduled signed checkpoint.
    key = load_private_key(live.keys_dir / "bea.key")
    set_kill_switch(Services(live), MODEL, True, "bea", key, "fraud ring suspected")
    checkpoint = tmp_path / "checkpoints" / "ckpt.json"  # a directory `--out` creates
    signed = govern(live, "ledger", "checkpoint", "--out", checkpoint)
    assert signed.exit_code == 0, signed.output

    # Restore into a new database and directory; the originals are gone.
    url = new_database()
    run("pg_restore", "--no-owner", "--exit-on-error", "--dbname", url, str(dump))
    (tmp_path / "restored").mkdir()
    run("tar", "-xzf", str(archive), "-C", str(tmp_path / "restored"))
    shutil.rmtree(tmp_path / "live")
    home = tmp_path / "restored" / "govern"
    restored = replace(live, home=home, database_url=url, roster_override=home / "roster.yaml")

    assert govern(restored, "db", "current").exit_code == 0
    verified = govern(restored, "ledger", "verify")
    assert verified.exit_code == 0, verified.output
    after = status(restored)
    assert (after["champion"], after["kill_switch"]["on"]) == (before["champion"], False)  # as at the backup
    assert after["incidents"] == []
    lineage = govern(restored, "lineage", MODEL, str(before["champion"]))
    assert lineage.exit_code == 0, lineage.output
    traced = govern(restored, "trace", decision)
    assert traced.exit_code == 0, traced.output

    # The kill switch set after the backup is not in the restored ledger: the checkpoint says entries are gone.
    extends = govern(restored, "ledger", "verify", "--checkpoint", checkpoint)
    assert extends.exit_code == 1, extends.output
    assert "the tail was truncated" in extends.output, extends.output
