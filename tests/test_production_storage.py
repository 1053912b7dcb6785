"""The production configuration as docs/operations.md sets it up: a role with a password, its own
databases, the documented variables, and Dagster really running on PostgreSQL through the dagster.yaml
`govern` writes (reading the generated YAML does not show that Dagster can write)."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
import sqlalchemy
import yaml
from typer.testing import CliRunner

from governance.control import ControlStore
from governance.decisions import DecisionLog
from governance.errors import GovernanceError
from governance.ledger import Ledger
from governance.registry import ModelRegistry
from governance.settings import Settings
from governance.state import prepare
from programs.cli import app
from tests.conftest import POSTGRES_ADMIN_URL
from tests.helpers import REPO

VERSIONS = dg.DynamicPartitionsDefinition(name="versions")


@dg.asset(partitions_def=VERSIONS)
def report() -> dict:
    return {"auc": 0.8}


@pytest.fixture
def production_role():
    """docs/operations.md's setup: a login role with a password that owns a database per store."""
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    role, password = f"govern_{uuid.uuid4().hex[:10]}", "s3cret:/@pw"  # characters a URL must quote
    databases = {store: f"{role}_{store}" for store in ("governance", "dagster", "mlflow")}
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
            for database in databases.values():
                conn.exec_driver_sql(f"CREATE DATABASE {database} OWNER {role}")
    except sqlalchemy.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    host = sqlalchemy.make_url(POSTGRES_ADMIN_URL)
    yield {
        store: sqlalchemy.URL.create("postgresql", role, password, host.host, host.port, database).render_as_string(
            hide_password=False
        )
        for store, database in databases.items()
    }
    with admin.connect() as conn:
        for database in databases.values():
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
    admin.dispose()


@pytest.mark.parametrize("driver", ["", "+psycopg2", "+psycopg"])
def test_dagster_and_our_stores_run_on_postgresql_with_the_documented_urls(
    tmp_path, monkeypatch, production_role, driver
):
    urls = {store: url.replace("postgresql://", f"postgresql{driver}://") for store, url in production_role.items()}
    monkeypatch.setenv("GOVERN_DAGSTER_DATABASE_URL", urls["dagster"])
    settings = Settings(
        home=tmp_path / "govern",
        config_path=REPO / "governance.yaml",
        database_url=urls["governance"],
        dagster_database_url=urls["dagster"],
        mlflow_tracking_uri=urls["mlflow"],
    )
    upgraded = CliRunner().invoke(  # as docs/operations.md says, before any process uses the stores
        app,
        ["--home", str(settings.home), "--config", str(settings.config_path), "db", "upgrade"],
        env={"GOVERN_DATABASE_URL": urls["governance"], "MLFLOW_TRACKING_URI": urls["mlflow"]},
    )
    assert upgraded.exit_code == 0, upgraded.output
    prepare(settings)
    assert production_role["dagster"].split("@")[0] not in (settings.dagster_home / "dagster.yaml").read_text()

    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        instance.add_dynamic_partitions("versions", ["v1"])
        result = dg.materialize([report], instance=instance, partition_key="v1")
        assert result.success
        records = instance.fetch_materializations(dg.AssetKey("report"), limit=10).records
        assert [r.partition_key for r in records] == ["v1"]
        assert records[0].run_id == result.run_id
        assert instance.get_run_by_id(result.run_id).is_success
        worker = dg.DagsterInstance.from_ref(instance.get_ref())  # how a launched run's worker opens it
        worker.report_runless_asset_event(dg.AssetMaterialization("report", partition="v1"))
        worker.dispose()
        assert len(instance.fetch_materializations(dg.AssetKey("report"), limit=10).records) == 2
    finally:
        instance.dispose()

    ledger = Ledger.for_settings(settings)
    entry = ledger.append_record(actor="system:test", action="test.recorded", subject={"model": "credit_scoring"})
    assert ledger.entry(entry.seq).action == "test.recorded"
    control = ControlStore.for_settings(settings)
    control.set_kill_switch("credit_scoring", True, "drill", "system:test", "c" * 64)
    assert control.kill_switch("credit_scoring").disabled
    assert DecisionLog.for_settings(settings).count("credit_scoring") == 0
    registry = ModelRegistry.for_settings(settings)  # MLflow's tracking and registry store, migrated
    run_id = registry.start_run("credit_scoring", "credit_scoring-v1", tags={"governance.data_md5": "0" * 32})
    registry.finish_run(run_id, ok=True)
    assert registry.run_for("credit_scoring", "credit_scoring-v1").info.run_id == run_id


def test_dagster_writes_on_the_storage_the_helm_chart_configures(tmp_path, monkeypatch, production_role):
    """The chart renders `storage: postgres: postgres_db:` from deploy/helm/values.yaml's `postgresql` values
    (its _postgresql.tpl), the password from a secret in DAGSTER_PG_PASSWORD; Dagster must write events on it."""
    values = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())["postgresql"]
    url = sqlalchemy.make_url(production_role["dagster"])
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password)
    postgres_db = {
        "username": url.username,
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": url.host,
        "db_name": url.database,
        "port": url.port or 5432,
        "scheme": values["postgresqlScheme"],
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"postgres": {"postgres_db": postgres_db}}}))
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        instance.add_dynamic_partitions("versions", ["v1"])
        assert dg.materialize([report], instance=instance, partition_key="v1").success
    finally:
        instance.dispose()


def test_a_dagster_database_url_that_is_not_postgresql_is_refused_without_showing_it(tmp_path):
    with pytest.raises(GovernanceError, match="GOVERN_DAGSTER_DATABASE_URL: expected a postgresql:// URL") as refused:
        Settings(
            home=tmp_path,
            config_path=tmp_path / "governance.yaml",
            dagster_database_url="mysql://govern:hunter2@db/dagster",
        )
    assert "hunter2" not in str(refused.value)
