"""`govern db current/upgrade` and `govern token create/list/revoke` against production's PostgreSQL."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from governance.errors import GovernanceError
from governance.serving.tokens import TokenStore, token_matches
from governance.settings import Settings
from programs.cli import app
from tests.conftest import REPO


def _govern(url: str, home, *args: str):
    env = {"GOVERN_DATABASE_URL": url, "GOVERN_HOME": str(home), "GOVERN_CONFIG": str(REPO / "governance.yaml")}
    return CliRunner().invoke(app, list(args), env=env)


def _refusal(result) -> str:
    """What `govern` prints after `error:` (`run_guarded` turns a GovernanceError into exit status 2)."""
    assert isinstance(result.exception, GovernanceError), result.output
    return str(result.exception)


def test_db_current_says_behind_until_upgrade_and_upgrade_is_idempotent(empty_postgres_url, tmp_path):
    behind = _govern(empty_postgres_url, tmp_path, "db", "current")
    assert behind.exit_code == 1 and "run `govern db upgrade`" in behind.output
    first = _govern(empty_postgres_url, tmp_path, "db", "upgrade", "--json")
    assert first.exit_code == 0
    assert [(r["schema"], r["from"]) for r in json.loads(first.output)] == [("governance", None), ("decisions", None)]
    again = _govern(empty_postgres_url, tmp_path, "db", "upgrade")
    assert again.exit_code == 0 and again.output.count("already at") == 2
    assert _govern(empty_postgres_url, tmp_path, "db", "current").exit_code == 0


def test_a_store_on_an_old_schema_is_refused_with_the_command_to_run(empty_postgres_url, tmp_path):
    refused = _govern(empty_postgres_url, tmp_path, "token", "list")
    assert "run `govern db upgrade`" in _refusal(refused)


def test_token_create_list_revoke(postgres_url, tmp_path):
    created = _govern(postgres_url, tmp_path, "token", "create", "--name", "loan-frontend", "--json")
    assert created.exit_code == 0
    token = json.loads(created.output)["token"]
    store = TokenStore.for_settings(
        Settings(home=tmp_path, config_path=REPO / "governance.yaml", database_url=postgres_url)
    )
    assert token_matches(token, store.active_digests())
    listed = _govern(postgres_url, tmp_path, "token", "list", "--json")
    (row,) = json.loads(listed.output)
    assert row["name"] == "loan-frontend" and token not in listed.output
    assert _govern(postgres_url, tmp_path, "token", "revoke", row["token_id"]).exit_code == 0
    assert not token_matches(token, store.active_digests())
    twice = _govern(postgres_url, tmp_path, "token", "revoke", row["token_id"])
    assert "no active API token" in _refusal(twice)
    unnamed = _govern(postgres_url, tmp_path, "token", "create", "--name", " ")
    assert "needs a name" in _refusal(unnamed)
