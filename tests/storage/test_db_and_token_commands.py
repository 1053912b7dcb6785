"""`govern db current/upgrade` and `govern token create/list/revoke` against production's PostgreSQL."""

from __future__ import annotations

import json
from hashlib import sha256

import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from governance import events
from governance.errors import GovernanceError
from governance.serving.tokens import ALL_MODELS, TokenStore, token_matches
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


@pytest.fixture(params=["sqlite", "postgresql"])
def token_cli(request, tmp_path):
    """`govern token` on a state dir whose governance database is SQLite (embedded) or PostgreSQL, and the
    settings an insider's raw SQL and the servers' token store read."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    env = {"GOVERN_HOME": str(tmp_path), "GOVERN_CONFIG": str(REPO / "governance.yaml")}
    if url:
        env["GOVERN_DATABASE_URL"] = url
    else:
        assert CliRunner().invoke(app, ["init"], env=env).exit_code == 0
    settings = Settings(home=tmp_path, config_path=REPO / "governance.yaml", database_url=url)
    return (lambda *args: CliRunner().invoke(app, list(args), env=env)), settings


def _sql(settings: Settings, statement: str, **params) -> None:
    """What an insider with the database's credentials runs, outside `govern token`."""
    engine = sqlalchemy.create_engine(settings.ledger_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(statement), params)
    engine.dispose()


def test_a_token_row_the_ledger_does_not_back_opens_nothing_and_is_named(token_cli):
    govern, settings = token_cli
    honest = json.loads(govern("token", "create", "--name", "loan-frontend", "--json").output)["token"]
    revoked = json.loads(govern("token", "create", "--name", "leaver", "--json").output)["token"]
    revoked_id = revoked.split("_")[1]
    assert govern("token", "revoke", revoked_id).exit_code == 0
    secret = "attacker-chosen-secret"
    _sql(  # a row minted by hand, and a revoked one made active again
        settings,
        "insert into api_tokens (token_id, name, secret_sha256, created_by, created_at) "
        "values ('f0f0f0f0f0f0f0f0', 'backdoor', :digest, 'cli:ops', '2026-12-01T00:00:00Z')",
        digest=sha256(secret.encode()).hexdigest(),
    )
    _sql(settings, "update api_tokens set revoked_at = null where token_id = :id", id=revoked_id)

    store = TokenStore.for_settings(settings)
    active = store.active_digests()
    assert token_matches(honest, active)
    assert not token_matches(f"gvt_f0f0f0f0f0f0f0f0_{secret}", active) and not token_matches(revoked, active)
    store.active_digests()  # a second server read ledgers nothing new
    refused = {e.token_id: e.problem for e in store.ledger.events(events.ApiTokenRefused, model=ALL_MODELS)}
    assert refused == {
        "f0f0f0f0f0f0f0f0": "no api_token.issued entry in the ledger issues it (the row was written outside "
        "`govern token`)",
        revoked_id: refused[revoked_id],
    }
    assert refused[revoked_id].endswith("revoked it, but its row says active (the row was edited)")

    listed = govern("token", "list")
    assert listed.exit_code == 1
    assert "backdoor" in listed.output and listed.output.count("REFUSED: ") == 2, listed.output
    assert "loan-frontend" in listed.output and secret not in listed.output


def test_a_rewritten_secret_digest_is_refused(token_cli):
    govern, settings = token_cli
    token = json.loads(govern("token", "create", "--name", "loan-frontend", "--json").output)["token"]
    token_id = token.split("_")[1]
    _sql(
        settings,
        "update api_tokens set secret_sha256 = :digest where token_id = :id",
        digest=sha256(b"mine").hexdigest(),
        id=token_id,
    )
    active = TokenStore.for_settings(settings).active_digests()
    assert not token_matches(f"gvt_{token_id}_mine", active) and not token_matches(token, active)
    assert "the row was rewritten" in govern("token", "list").output
