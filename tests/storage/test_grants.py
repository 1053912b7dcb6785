"""deploy/postgres/grants.sql, as docs/operations.md ("Roles and grants") has a platform engineer apply it: on a copy
of a governed history with every store on PostgreSQL, each process's role does its job through the project's own
code (serving decides, Dagster trains and releases, the guard contains and seals, a person re-enables and rolls
back, retention runs) and is refused, by PostgreSQL, what it must not do."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from governance.config import load_config
from governance.decisions import DecisionLog
from governance.release.approvals import decide
from governance.release.kill_switch import set_kill_switch
from governance.release.requests import request_candidate
from governance.release.services import Services
from governance.serving.app import create_app
from governance.settings import Settings
from jobs.candidates import next_candidate_key
from tests.attacks.support import V3, Pending, key_of
from tests.conftest import POSTGRES_ADMIN_URL
from tests.helpers import REPO, Lifecycle, RunningAPI, travel, wait_until
from tests.lineage.conftest import copy_of, govern
from tests.lineage.world import MODEL, World, database_env, served_decisions
from tests.serving.conftest import bearer

ROLES = ("serving", "guard", "dagster", "operator", "retention")
STORES = ("database_url", "mlflow_tracking_uri", "dagster_database_url")


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def granted(production_world: World, tmp_path):
    """A copy of the production world, grants.sql applied to its three databases with throwaway role names; the
    copies and the roles are dropped afterwards."""
    live = copy_of(production_world, tmp_path / "govern")
    names = {role: f"govern_{uuid.uuid4().hex[:8]}_{role}" for role in ROLES}
    databases = {store: sqlalchemy.make_url(getattr(live, store)).database for store in STORES}
    variables = {
        **names,
        "governance_db": databases["database_url"],
        "mlflow_db": databases["mlflow_tracking_uri"],
        "dagster_db": databases["dagster_database_url"],
    }
    command = ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", libpq(POSTGRES_ADMIN_URL), "-f"]
    command += [str(REPO / "deploy" / "postgres" / "grants.sql")]
    command += [option for name, value in variables.items() for option in ("-v", f"{name}={value}")]
    for _ in range(2):  # a second run (after an upgrade) is harmless
        applied = subprocess.run(command, capture_output=True, text=True)
        assert applied.returncode == 0, applied.stderr
    yield live, {role: as_role(live, name) for role, name in names.items()}
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        for database in databases.values():
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for name in names.values():
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')


def as_role(settings: Settings, role: str) -> Settings:
    """The same deployment, every database reached as `role` (the test server trusts local connections)."""
    return replace(
        settings,
        **{
            store: sqlalchemy.make_url(getattr(settings, store)).set(username=role).render_as_string()
            for store in STORES
        },
    )


def run_sql(url: str, statement: str) -> None:
    """`statement` as the URL's role, rolled back: whether PostgreSQL lets that role run it."""
    engine = sqlalchemy.create_engine(libpq(url).replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
            conn.rollback()
    finally:
        engine.dispose()


def refused(url: str, *statements: str) -> None:
    for statement in statements:
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="permission denied") as denied:
            run_sql(url, statement)
        assert "InsufficientPrivilege" in type(denied.value.orig).__name__, (statement, denied.value)


UPDATE_LEDGER = "UPDATE ledger_entries SET content = content WHERE seq = 1"
DELETE_LEDGER = "DELETE FROM ledger_entries WHERE seq = 1"
REWRITE_NODES = "UPDATE ledger_nodes SET hash = hash"
LOG_DECISION = (
    "INSERT INTO decisions (decision_id, ts, model, input_digest, outcome, reasons, kill_switch) "
    "VALUES ('forged', now(), 'credit_scoring', 'x', 'approve', '[]', false)"
)
DELETE_DECISIONS = "DELETE FROM decisions"
EDIT_DECISION = "UPDATE decisions SET outcome = 'approve'"
FLIP_ROW = "UPDATE kill_switches SET disabled = false"
MOVE_ROW = "UPDATE deployments SET status = 'completed'"
ISSUE_TOKEN = "INSERT INTO api_tokens VALUES ('t', 'n', 's', 'c', 'now', NULL)"


def test_each_role_does_its_job_and_postgresql_refuses_what_it_must_not(granted, monkeypatch):
    live, role = granted
    operator, dagster, guard = role["operator"], role["dagster"], role["guard"]
    headers = bearer(operator, "loan-frontend")  # `govern token create`, as a person
    config = load_config(live.config_path)
    with (
        RunningAPI(create_app(role["serving"], config, poll_seconds=0.1)) as api,
        httpx.Client(base_url=api.url, headers=headers, timeout=30) as client,
    ):
        served = lambda: client.get(f"/models/{MODEL}").json()["served_version"]  # noqa: E731
        logged = DecisionLog.for_settings(live).count(MODEL)
        [(body, _)] = served_decisions(client, config, 1, 1, seed=5)  # the world's champion after its rollback
        assert DecisionLog.for_settings(live).count(MODEL) == logged + 1

        # Dagster's processes train v3 (signed for by dana) and, on ravi's approval, release it.
        with database_env(dagster):
            runs = Pending(Lifecycle.of(dagster))
        assert next_candidate_key(runs.life.instance, runs.life.registry, config.model(MODEL)) == V3
        request_candidate(Services(operator), MODEL, V3, "dana", key_of(live, "dana"))
        assert runs.candidate(V3).success
        decide(Services(operator), MODEL, V3, "approve", "ravi", key_of(live, "ravi"), comment="grants drill")
        assert runs.release(V3).success
        wait_until(lambda: served() == 3, "serving to follow the release", timeout=30)
        runs.life.instance.dispose()

        # The guard contains (as the system principal) and seals; a person re-enables.
        set_kill_switch(Services(guard), MODEL, True, "system", key_of(live, "system"), "grants drill")
        wait_until(lambda: client.post(f"/models/{MODEL}/decisions", json=body).json()["safe_state"], "the safe state")
        travel(monkeypatch, timedelta(minutes=2))  # decisions are sealed once a minute old
        sealed = govern(guard, "decisions", "seal", "--json")
        assert sealed.exit_code == 0, sealed.output
        assert json.loads(sealed.output), "nothing sealed"
        enabled = govern(operator, "enable", MODEL, "--reason", "grants drill over", "--as", "bea")
        assert enabled.exit_code == 0, enabled.output
        # A person rolls back (the control state, and MLflow's alias as a cache of it); serving follows.
        rolled = govern(operator, "rollback", MODEL, "--reason", "grants drill: back to v1", "--as", "paul")
        assert rolled.exit_code == 0, rolled.output
        wait_until(lambda: served() == 1, "serving to follow the rollback", timeout=30)
    status = govern(operator, "status", "--json")
    assert status.exit_code == 0, status.output
    assert (json.loads(status.output)[0]["champion"], json.loads(status.output)[0]["kill_switch"]["on"]) == (1, False)
    kept = govern(role["retention"], "retention")
    assert kept.exit_code == 0, kept.output

    everyone_refused = (UPDATE_LEDGER, DELETE_LEDGER, REWRITE_NODES, EDIT_DECISION)
    refused(role["serving"].database_url, *everyone_refused, DELETE_DECISIONS, FLIP_ROW, MOVE_ROW, ISSUE_TOKEN)
    refused(role["serving"].mlflow_tracking_uri, "UPDATE registered_model_aliases SET version = 1")
    refused(guard.database_url, *everyone_refused, LOG_DECISION, DELETE_DECISIONS, MOVE_ROW, ISSUE_TOKEN)
    refused(dagster.database_url, *everyone_refused, LOG_DECISION, DELETE_DECISIONS, ISSUE_TOKEN)
    refused(operator.database_url, *everyone_refused, LOG_DECISION, DELETE_DECISIONS)
    refused(operator.mlflow_tracking_uri, "DELETE FROM model_versions", "UPDATE experiments SET name = name")
    refused(operator.dagster_database_url, "DELETE FROM runs")
    refused(role["retention"].database_url, UPDATE_LEDGER, DELETE_LEDGER, REWRITE_NODES, EDIT_DECISION, LOG_DECISION)
    run_sql(role["retention"].database_url, "UPDATE ledger_entries SET payload = NULL WHERE seq = 1")  # expiry only
    run_sql(role["retention"].database_url, DELETE_DECISIONS)  # whole sealed ranges, as retention deletes them
    for outsider in (role["serving"], guard, role["retention"]):
        with pytest.raises(sqlalchemy.exc.OperationalError, match="permission denied for database"):
            run_sql(outsider.dagster_database_url, "SELECT 1")
