"""Production's scoring API denies by default: every route, mounted apps included, needs an active bearer
token, except the liveness and readiness probes; tokens are stored as digests, revocable, and ledgered."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from governance import events
from governance.ledger import Ledger
from governance.serving.app import create_app
from governance.serving.auth import REFRESH_SECONDS, ActiveTokens
from governance.serving.tokens import (
    SESSION_SECONDS,
    TokenStore,
    api_tokens,
    console_session,
    session_matches,
    token_matches,
)
from governance.settings import Settings
from programs.cli import app as govern_cli
from programs.status import trust_warnings
from tests.helpers import REPO, SMALL_CONFIG, RunningAPI, wait_until
from tests.serving.conftest import MODEL, body, on_database

DECIDE = f"/models/{MODEL}/decisions"


@pytest.fixture
def production(deployed, postgres_url):
    """The deployed state on PostgreSQL (production), its token store, an application body, and a client of its
    scoring API, which has no token."""
    settings = on_database(deployed.settings, postgres_url)
    sent = body(deployed.applications.iloc[5], deployed.model)
    app = create_app(settings, deployed.config, poll_seconds=0.2)
    with RunningAPI(app) as api, httpx.Client(base_url=api.url, timeout=30) as client:
        yield settings, TokenStore.for_settings(settings), sent, client


def test_production_api_refuses_requests_without_a_valid_token(production):
    settings, tokens, sent, client = production
    token = tokens.create("loan-frontend", "cli:tests")
    closed = {
        "POST " + DECIDE: lambda h: client.post(DECIDE, json=sent, headers=h),
        **{
            f"GET {path}": (lambda h, path=path: client.get(path, headers=h))
            for path in (f"/models/{MODEL}", "/ledger/entries/1", "/metrics", "/docs", "/openapi.json", "/console/")
        },
    }
    for headers in ({}, {"Authorization": "Bearer gvt_0000_nope"}, {"Authorization": f"Basic {token}"}):
        answers = {route: call(headers) for route, call in closed.items()}
        assert {r: a.status_code for r, a in answers.items()} == dict.fromkeys(closed, 401), headers
        assert answers["POST " + DECIDE].headers["www-authenticate"] == "Bearer"
    assert {p: client.get(p).status_code for p in ("/healthz", "/readyz")} == {"/healthz": 200, "/readyz": 200}
    assert client.get("/healthz").json()["authentication"] == "bearer tokens"

    valid = {"Authorization": f"Bearer {token}"}
    answers = {route: call(valid) for route, call in closed.items()}
    assert {r: a.status_code for r, a in answers.items()} == dict.fromkeys(closed, 200)
    assert "Governed models" in answers["GET /console/"].text  # the mounted audit console, behind the token

    token_id = token.split("_")[1]
    tokens.revoke(token_id, "cli:tests")
    wait_until(
        lambda: client.post(DECIDE, json=sent, headers=valid).status_code == 401,
        "the revoked token refused",
        timeout=2 * REFRESH_SECONDS + 2,
    )
    with tokens.engine.connect() as conn:
        stored = conn.execute(select(api_tokens)).mappings().one()
    assert token.split("_", 2)[2] not in str(dict(stored))  # only the secret's digest is kept
    ledger = Ledger.for_settings(settings)
    assert [e.token_id for e in ledger.events(events.ApiTokenIssued)] == [token_id]
    assert [e.token_id for e in ledger.events(events.ApiTokenRevoked)] == [token_id]


def test_the_embedded_default_serves_without_tokens_and_says_so(deployed):
    with (
        RunningAPI(create_app(deployed.settings, deployed.config, poll_seconds=0.2)) as api,
        httpx.Client(base_url=api.url, timeout=30) as client,
    ):
        assert client.get(f"/models/{MODEL}").status_code == 200
        assert client.get("/healthz").json()["authentication"].startswith("open (embedded default")


def test_govern_status_says_the_embedded_default_api_is_open_as_healthz_does(tmp_path):
    base = ["--home", str(tmp_path / "govern"), "--config", str(SMALL_CONFIG)]
    runner = CliRunner(env={"GOVERN_POLICIES": str(REPO / "policies")})
    assert runner.invoke(govern_cli, [*base, "init"]).exit_code == 0
    open_api = "the scoring API is open (embedded default; production requires tokens): whoever can reach it"
    assert f"WARNING: {open_api}" in runner.invoke(govern_cli, [*base, "status"]).output
    (model,) = json.loads(runner.invoke(govern_cli, [*base, "status", "--json"]).output)
    assert [warning for warning in model["trust"] if warning.startswith(open_api)]
    embedded = Settings(home=tmp_path / "govern", config_path=SMALL_CONFIG, policies_override=REPO / "policies")
    production = replace(embedded, database_url="postgresql://govern@db/governance")
    assert not [warning for warning in trust_warnings(production) if "scoring API" in warning]


def test_a_browser_signs_in_to_the_console_with_a_token_that_reads_the_console_and_nothing_else(production):
    _, tokens, sent, browser = production
    token = tokens.create("auditor", "cli:tests")
    asked = browser.get("/console/ledger")
    assert asked.status_code == 401 and 'action="/console/sign-in"' in asked.text
    assert "default-src 'none'" in asked.headers["content-security-policy"]
    assert browser.get("/console/sign-in").status_code == 200

    for wrong in ("", "gvt_0000_nope", token + "x", "a" * 5000):
        refused = browser.post("/console/sign-in", data={"token": wrong})
        assert refused.status_code in (401, 413) and "set-cookie" not in refused.headers, wrong[:20]
    signed_in = browser.post("/console/sign-in", data={"token": token})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console/"
    cookie = signed_in.headers["set-cookie"]
    assert all(part in cookie for part in ("HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=28800")), cookie
    session = browser.cookies["govern_console"]
    assert token.split("_", 2)[2] not in session and session.startswith(f"gvs_{token.split('_')[1]}_")
    assert "Governed models" in browser.get("/console/").text  # the cookie, no header
    assert browser.get("/console/ledger").status_code == 200

    sent_where_it_does_not_count = {"cookie": f"govern_console={session}"}
    assert browser.post(DECIDE, json=sent, headers=sent_where_it_does_not_count).status_code == 401
    assert browser.get(f"/models/{MODEL}", headers=sent_where_it_does_not_count).status_code == 401
    assert browser.get("/metrics", headers=sent_where_it_does_not_count).status_code == 401

    def elsewhere(path: str, **headers: str) -> int:
        """A request from another client (no cookie jar): what someone holding a copied cookie can do."""
        return httpx.get(str(browser.base_url.join(path)), headers=headers, timeout=30).status_code

    assert elsewhere("/console/", cookie=f"govern_console={session}") == 200
    assert elsewhere(f"/models/{MODEL}", authorization=f"Bearer {session}") == 401  # a session is not a token
    assert elsewhere("/console/", authorization=f"Bearer {session}") == 401
    prefix, token_id, expires, mac = session.split("_")
    for forged in (f"{prefix}_{token_id}_{int(expires) + 3600}_{mac}", f"{prefix}_{token_id}_{expires}_{'0' * 64}"):
        assert elsewhere("/console/", cookie=f"govern_console={forged}") == 401

    tokens.revoke(token.split("_")[1], "cli:tests")
    wait_until(
        lambda: browser.get("/console/").status_code == 401,
        "the revoked token's console session ended",
        timeout=2 * REFRESH_SECONDS + 2,
    )


def test_a_console_session_ends_at_its_expiry_and_with_its_token(production):
    _, tokens, _, _ = production
    token, now = tokens.create("auditor", "cli:tests"), time.time()
    active = tokens.active_digests()
    session = console_session(token, active, now)
    assert session is not None and console_session(token + "x", active, now) is None
    assert session_matches(session, active, now + SESSION_SECONDS - 1)
    assert not session_matches(session, active, now + SESSION_SECONDS)
    tokens.revoke(token.split("_")[1], "cli:tests")
    assert not session_matches(session, tokens.active_digests(), now)


def test_a_revoked_token_is_refused_by_the_first_request_after_the_refresh_period(settings):
    """Tokens were re-read in the background once a request found them old, and that request (with any before the
    re-read) was answered from the old list: after an idle minute a revoked token still got through once."""
    store = TokenStore.for_settings(settings)
    token = store.create("loan-frontend", "cli:tests")
    active = ActiveTokens(store, refresh_seconds=0.2)
    assert token_matches(token, asyncio.run(active.current()))
    store.revoke(token.split("_")[1], "cli:tests")
    time.sleep(0.3)  # idle for longer than the refresh period
    assert not token_matches(token, asyncio.run(active.current()))
