"""The state dir's Dagster storage: Dagster's SQLite files and tables, over pooled connections."""

from __future__ import annotations

import inspect
import multiprocessing
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
import yaml

from governance.errors import GovernanceError
from governance.settings import Settings
from governance.state import dagster_instance_config, prepare
from programs.instance import create_databases
from speedups import PooledSqliteEventLogStorage, PooledSqliteRunStorage, PooledSqliteScheduleStorage
from tests.helpers import wait_until

VERSIONS = dg.DynamicPartitionsDefinition(name="versions")


@dg.asset(partitions_def=VERSIONS)
def report() -> dict:
    return {"auc": 0.8}


@dg.asset(partitions_def=VERSIONS)
def card(report: dict) -> dict:
    return {"auc": report["auc"]}


JOB = dg.Definitions(assets=[report, card], jobs=[dg.define_asset_job("evaluate")]).resolve_job_def("evaluate")


def instance(home: Path, pooled: bool = True) -> dg.DagsterInstance:
    """The instance of a state dir as `govern` configures it, or Dagster's plain SQLite default."""
    config = dagster_instance_config(Settings(home=home, config_path=home / "governance.yaml"))
    if not pooled:
        del config["storage"]
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_config(str(dagster_home))


def evaluate(inst: dg.DagsterInstance, version: str) -> dg.ExecuteInProcessResult:
    inst.add_dynamic_partitions("versions", [version])
    return JOB.execute_in_process(instance=inst, partition_key=version)


def materialized(inst: dg.DagsterInstance, asset: str) -> list[str]:
    records = inst.fetch_materializations(dg.AssetKey(asset), limit=100).records
    return sorted(r.partition_key for r in records)


class Connects:
    """New SQLite connections opened, process-wide, while counting."""

    def __init__(self) -> None:
        self.count = 0

    def _opened(self, *_args) -> None:
        self.count += 1

    def __enter__(self) -> Connects:
        sqlalchemy.event.listen(sqlalchemy.pool.Pool, "connect", self._opened)
        return self

    def __exit__(self, *_exc) -> None:
        sqlalchemy.event.remove(sqlalchemy.pool.Pool, "connect", self._opened)


def test_the_embedded_default_is_pooled_sqlite_and_production_is_postgres(tmp_path):
    inst = instance(tmp_path)
    assert isinstance(inst.event_log_storage, PooledSqliteEventLogStorage)
    assert isinstance(inst.run_storage, PooledSqliteRunStorage)
    assert isinstance(inst.schedule_storage, PooledSqliteScheduleStorage)
    assert (tmp_path / "dagster" / "history" / "runs.db").is_file()  # Dagster's own layout
    production = Settings(
        home=tmp_path, config_path=tmp_path / "governance.yaml", dagster_database_url="postgresql://dagster@db/dagster"
    )
    assert dagster_instance_config(production)["storage"] == {
        "custom": {
            "module": "programs.postgres_storage",
            "class": "PostgresStorage",
            "config": {"postgres_url": {"env": "GOVERN_DAGSTER_DATABASE_URL"}},
        }
    }  # Dagster on PostgreSQL runs in
    # tests/test_production_storage.py


def test_the_dagster_internals_the_pooled_storage_relies_on_are_unchanged():
    """speedups.py's pooled storage overrides private pieces of Dagster's SQLite storages (measured gain: about 2 s of a
    governed candidate run). An upgrade that renames or reshapes one of them fails here, by name, before runs
    fail obscurely: then re-measure with bench/pipeline_overhead.py and port the override or drop it."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
    from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
    from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

    def parameters(method) -> list[str]:
        return list(inspect.signature(method).parameters)

    assert parameters(SqliteEventLogStorage._connect) == ["self", "shard"]
    assert parameters(SqliteEventLogStorage._initdb)[:2] == ["self", "engine"]
    assert parameters(SqliteEventLogStorage.conn_string_for_shard) == ["self", "shard_name"]
    for attribute in ("self._db_lock", "self._initialized_dbs"):
        assert attribute in inspect.getsource(SqliteEventLogStorage.__init__), attribute
    for storage in (SqliteRunStorage, SqliteScheduleStorage):
        assert parameters(storage.connect) == ["self"]
        assert "self._conn_string" in inspect.getsource(storage.__init__), storage
    for attribute in ("_run_storage", "_event_log_storage", "_schedule_storage"):
        assert f"self.{attribute}" in inspect.getsource(DagsterSqliteStorage), attribute
    assert dg.__version__ == "1.13.27", "measured and checked on 1.13.27: re-measure the pooled storage's gain"


def test_a_run_reuses_its_connections(tmp_path):
    plain, pooled = instance(tmp_path / "plain", pooled=False), instance(tmp_path / "pooled")
    for inst in (plain, pooled):  # the index and run databases exist before counting
        evaluate(inst, "v1")
    with Connects() as on_plain:
        evaluate(plain, "v2")
    with Connects() as on_pooled:
        result = evaluate(pooled, "v2")
    events = len(result.all_events)
    assert on_plain.count > events >= 15  # Dagster's default: a new connection per query and event
    assert on_pooled.count <= 4, f"{on_pooled.count} connections opened for one run of {events} events"
    assert materialized(pooled, "card") == ["v1", "v2"]


def test_a_state_dir_reads_the_same_with_either_storage(tmp_path):
    evaluate(instance(tmp_path, pooled=False), "v1")
    pooled = instance(tmp_path)
    assert materialized(pooled, "card") == ["v1"]
    evaluate(pooled, "v2")
    plain = instance(tmp_path, pooled=False)
    assert materialized(plain, "card") == ["v1", "v2"]
    assert plain.get_dynamic_partitions("versions") == ["v1", "v2"]
    assert len(plain.get_run_records()) == 2


def test_threads_share_the_pooled_storage(tmp_path):
    inst = instance(tmp_path)
    errors: list[BaseException] = []

    def add(thread: int) -> None:
        try:
            for i in range(15):
                inst.add_dynamic_partitions("versions", [f"t{thread}-{i}"])
                inst.report_runless_asset_event(dg.AssetMaterialization("report", partition=f"t{thread}-{i}"))
                inst.get_run_records(limit=1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(instance(tmp_path, pooled=False).get_dynamic_partitions("versions")) == 90
    assert len(materialized(inst, "report")) == 90


def test_a_forked_process_opens_its_own_connections(tmp_path):
    inst = instance(tmp_path)
    evaluate(inst, "v1")  # the parent's pool holds open connections now

    def record() -> None:
        with Connects() as opened:
            inst.add_dynamic_partitions("versions", ["child"])  # into the index the parent has open
        sys.exit(0 if opened.count else 3)  # 3: it wrote through a connection inherited from the parent

    child = multiprocessing.get_context("fork").Process(target=record)
    child.start()
    try:
        child.join(60)
    finally:
        child.kill()
    assert child.exitcode == 0
    evaluate(inst, "v2")  # the parent's connections still work
    assert inst.get_dynamic_partitions("versions") == ["v1", "child", "v2"]
    assert materialized(inst, "report") == ["v1", "v2"]


def test_wipe_closes_connections_before_deleting_the_run_files(tmp_path):
    inst = instance(tmp_path)
    run = evaluate(inst, "v1").dagster_run
    inst.wipe()
    inst.report_engine_event("after the wipe", run)
    logs = instance(tmp_path, pooled=False).all_logs(run.run_id)
    assert [e.message for e in logs] == ["after the wipe"]  # on disk, not in a deleted file still open


def test_a_watcher_sees_events_committed_through_a_pooled_connection(tmp_path):
    writer, watcher = instance(tmp_path), instance(tmp_path)  # a run worker and the UI's webserver
    run = evaluate(writer, "v1").dagster_run
    assert watcher.all_logs(run.run_id)  # each now holds the run's file open: no checkpoint on commit
    seen: list[str] = []

    def note(event, _cursor) -> None:
        seen.append(event.message)

    watcher.watch_event_logs(run.run_id, None, note)
    try:
        for attempt in range(20):  # a poller on its own thread reads them
            writer.report_engine_event(f"while the UI watches ({attempt})", run)
            time.sleep(0.5)
            if any(m.startswith("while the UI watches") for m in seen):
                break
        assert any(m.startswith("while the UI watches") for m in seen), "the watcher saw no new event in 10 s"
    finally:
        watcher.end_watch_event_logs(run.run_id, note)
        watcher.dispose()


def test_a_watch_delivers_every_event_after_its_cursor_once(tmp_path):
    """The UI reads a run's events, then watches from that cursor. An event stored in between, and the
    run's last event (after which nothing is written again), must both arrive, and only once."""
    writer, watcher = instance(tmp_path), instance(tmp_path)
    run = evaluate(writer, "v1").dagster_run
    cursor = watcher.get_records_for_run(run.run_id).cursor
    writer.report_engine_event("stored between the read and the watch", run)
    seen: list[str] = []

    def note(event, _cursor) -> None:
        seen.append(event.message)

    watcher.watch_event_logs(run.run_id, cursor, note)
    try:
        wait_until(lambda: len(seen) >= 1, "the event stored between the read and the watch")
        writer.report_engine_event("the last event", run)
        wait_until(lambda: len(seen) >= 2, "the run's last event")
        time.sleep(1)  # a few more polls: nothing is delivered twice
        assert seen == ["stored between the read and the watch", "the last event"]
    finally:
        watcher.end_watch_event_logs(run.run_id, note)
        watcher.dispose()


def test_preparing_the_state_dir_keeps_an_operators_run_launcher(tmp_path):
    settings = Settings(home=tmp_path, config_path=tmp_path / "governance.yaml")
    instance_yaml = settings.dagster_home / "dagster.yaml"
    instance_yaml.parent.mkdir(parents=True)
    launcher = {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": {"job_namespace": "governance"}}
    instance_yaml.write_text(yaml.safe_dump({"run_launcher": launcher, "telemetry": {"enabled": True}}))
    prepare(settings)
    written = yaml.safe_load(instance_yaml.read_text())
    assert written["run_launcher"] == launcher
    assert written["telemetry"] == {"enabled": False}  # ours: never on
    assert written["storage"]["custom"]["class"] == "PooledSqliteStorage"
    instance_yaml.write_text("- not\n- a mapping\n")
    with pytest.raises(GovernanceError, match=f"{instance_yaml}: expected a mapping"):
        prepare(settings)


def test_a_new_state_dir_gets_its_databases_before_processes_share_it(tmp_path):
    settings = Settings(home=tmp_path, config_path=tmp_path / "governance.yaml")
    create_databases(settings)
    mlflow_db = sqlalchemy.create_engine(settings.tracking_uri)
    with mlflow_db.connect() as conn:  # migrated to MLflow's head: no process needs to migrate it again
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        assert conn.exec_driver_sql("SELECT count(*) FROM registered_models").scalar() == 0
    mlflow_db.dispose()
    assert (settings.dagster_home / "history" / "runs.db").is_file()


def test_the_instance_monitors_runs_and_retries_those_whose_worker_was_lost(tmp_path):
    settings = Settings(home=tmp_path, config_path=tmp_path / "governance.yaml")
    prepare(settings)
    inst = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        assert inst.run_monitoring_enabled
        assert (inst.run_monitoring_start_timeout_seconds, inst.run_monitoring_cancel_timeout_seconds) == (180, 180)
        assert inst.run_monitoring_poll_interval_seconds == 30
        assert inst.run_retries_enabled and inst.run_retries_max_retries == 2
        assert not inst.run_retries_retry_on_asset_or_op_failure  # a denied gate is an outcome, not retried
    finally:
        inst.dispose()


def test_the_daemon_evaluates_sensors_on_threads(tmp_path):
    settings = Settings(home=tmp_path, config_path=tmp_path / "governance.yaml")
    prepare(settings)
    inst = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        assert inst.get_sensor_settings() == {"use_threads": True, "num_workers": 4}
    finally:
        inst.dispose()
