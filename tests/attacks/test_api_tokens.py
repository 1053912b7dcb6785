"""API tokens against an insider who can write the governance database: a token row is a cache of the ledger.

A row inserted by hand, a revoked token made active again and a rewritten secret digest open nothing; each
refused row is ledgered once (`api_token.refused`) and `govern token list` names it (exit 1). On SQLite (the
embedded default's own database) and on PostgreSQL.
"""

from __future__ import annotations

import json
from hashlib import sha256

import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from governance import events
from governance.serving.tokens import TokenStore, token_matches
from governance.settings import Settings
from programs.cli import app
from tests.conftest import REPO


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
    refused = {e.token_id: e.problem for e in store.ledger.events(events.ApiTokenRefused, model=events.ALL_MODELS)}
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
