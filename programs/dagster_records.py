"""What `govern status` reads of the state dir's Dagster storage, read without importing Dagster.

Every governed model's version partitions and the newest materialization of each of its assets (and of each
asset's version partitions) are read in three queries for all models, from the tables of Dagster's own SQL storage
(the embedded default's SQLite files, or the PostgreSQL database the state dir's dagster.yaml names). Importing
Dagster and opening its instance, then asking it one asset partition at a time, was most of `govern status`: as a
fresh process at 50 models it now takes 0.44-0.51 of the time it took on SQLite (1.5-2.1 s against 3.4-4.4 s),
0.38-0.40 with three versions a model, 0.25-0.31 on PostgreSQL (bench/status.py, on two shared cores). Dagster is
imported only to say why a version's candidate run failed (`run_failures`: its error records are Dagster's own
classes).

Each read answers as Dagster's own call does: `get_dynamic_partitions` (in the order they were added),
`fetch_materializations` (the newest event, none from before the asset's last wipe) and `get_runs` (the job's
newest run tagged with the partition). tests/test_dagster_records.py holds every answer against Dagster's, on both
storages, so a Dagster upgrade that changes its tables or its stored events fails there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, and_, column, create_engine, func, or_, select, table

from governance.errors import GovernanceError
from governance.settings import Settings, dagster_postgres_url
from governance.yamlfile import read_yaml
from governance_assets.names import asset_path, versions_name

# The storages `governance.state` writes into dagster.yaml, by module and class.
SQLITE_STORAGE = ("speedups", "PooledSqliteStorage")
POSTGRES_STORAGE = ("programs.postgres_storage", "PostgresStorage")

# Dagster's tables (dagster/_core/storage/event_log/schema.py, runs/schema.py), the columns read here.
_EVENTS = table(
    "event_logs", column("id"), column("event"), column("dagster_event_type"), column("asset_key"),
    column("partition"), column("timestamp"),
)  # fmt: skip
_ASSET_KEYS = table("asset_keys", column("asset_key"), column("asset_details"))
_PARTITIONS = table("dynamic_partitions", column("id"), column("partitions_def_name"), column("partition"))
_RUNS = table("runs", column("id"), column("run_id"), column("status"), column("pipeline_name"))
_RUN_TAGS = table("run_tags", column("run_id"), column("key"), column("value"))
PARTITION_TAG = "dagster/partition"

# How Dagster stores the value of a metadata entry of each scalar kind (the kinds `govern status` shows).
_SCALAR_FIELDS = {
    "TextMetadataEntryData": "text",
    "BoolMetadataEntryData": "value",
    "IntMetadataEntryData": "value",
    "FloatMetadataEntryData": "value",
}


@dataclass(frozen=True)
class Materialization:
    timestamp: float
    run_id: str
    metadata: dict[str, Any]  # the entries of a scalar kind (text, bool, int, float), by label


class DagsterRecords:
    """The version partitions and newest materializations of `models`' `assets`, read once when made; a version's
    candidate run on demand. Close it (or use it as a context manager) to release its connections."""

    def __init__(self, settings: Settings, models: list[str], assets: tuple[str, ...]) -> None:
        self.settings = settings
        self._events, self._runs = _databases(settings)
        self._instance: Any = None  # the Dagster instance, opened by the first `run_failures`
        partitions = self._partitions([versions_name(m) for m in models])
        self._versions = {model: partitions[versions_name(model)] for model in models}
        self._materialized = self._materializations([asset_path(m, a) for m in models for a in assets])

    def versions(self, model: str) -> list[str]:
        """The model's version partitions, in the order they were added."""
        return self._versions[model]

    def latest(self, model: str, asset: str, partition: str | None) -> Materialization | None:
        """The asset's newest materialization of `partition`, or of any partition (and none) when None."""
        return self._materialized.get((asset_path(model, asset), partition))

    def latest_run(self, job: str, partition: str) -> tuple[str, str] | None:
        """The run id and status (`FAILURE`, ...) of the job's newest run tagged with the partition."""
        if self._runs is None:
            return None
        runs, tags = _RUNS, _RUN_TAGS
        tagged = runs.join(
            tags, and_(runs.c.run_id == tags.c.run_id, tags.c.key == PARTITION_TAG, tags.c.value == partition)
        )
        query = select(runs.c.run_id, runs.c.status).select_from(tagged).where(runs.c.pipeline_name == job)
        with self._runs.connect() as conn:
            row = conn.execute(query.order_by(runs.c.id.desc()).limit(1)).first()
        return None if row is None else (row.run_id, row.status)

    def run_failures(self, run_id: str) -> list[str]:
        """Why a run failed (`programs.failures`), from its events through the Dagster instance."""
        from programs.failures import run_failures

        return run_failures(self.instance(), run_id)

    def instance(self):  # -> dg.DagsterInstance, imported (about 0.7 s) only when a caller needs the instance
        """The Dagster instance itself, opened on first use: for what these records do not read."""
        from programs.instance import existing_instance

        if self._instance is None:
            self._instance = existing_instance(self.settings)
        return self._instance

    def close(self) -> None:
        if self._instance is not None:
            self._instance.dispose()
        for engine in {engine for engine in (self._events, self._runs) if engine is not None}:
            engine.dispose()

    def __enter__(self) -> DagsterRecords:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _partitions(self, names: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {name: [] for name in names}
        if self._events is None or not names:
            return found
        p = _PARTITIONS.c
        query = select(p.partitions_def_name, p.partition).where(p.partitions_def_name.in_(names)).order_by(p.id)
        with self._events.connect() as conn:
            for name, key in conn.execute(query):
                found[name].append(key)
        return found

    def _materializations(
        self, paths: list[tuple[str, str]]
    ) -> dict[tuple[tuple[str, str], str | None], Materialization]:
        """The newest materialization of each asset partition, and under (path, None) of each asset."""
        if self._events is None or not paths:
            return {}
        keys = {json.dumps(list(path)): path for path in paths}  # Dagster's `AssetKey.to_string()`
        e, a = _EVENTS.c, _ASSET_KEYS.c
        with self._events.connect() as conn:
            # An asset Dagster stored no event of has no row; one wiped has the time of its last wipe.
            details = conn.execute(select(a.asset_key, a.asset_details).where(a.asset_key.in_(list(keys))))
            recorded = {key: _wiped_at(text) for key, text in details}
            if not recorded:
                return {}
            newest = (
                select(func.max(e.id))
                .where(e.dagster_event_type == "ASSET_MATERIALIZATION", _since_wipe(recorded))
                .group_by(e.asset_key, e.partition)
            )
            rows = conn.execute(select(e.asset_key, e.partition, e.event).where(e.id.in_(newest)).order_by(e.id))
            found: dict[tuple[tuple[str, str], str | None], Materialization] = {}
            for key, partition, event in rows:
                path, materialization = keys[key], _materialization(event)
                found[(path, partition)] = found[(path, None)] = materialization  # ascending: the last is newest
        return found


def _databases(settings: Settings) -> tuple[Engine | None, Engine | None]:
    """The event log's index and the run storage, where the state dir's dagster.yaml puts them; None for a
    database Dagster has not created (nothing recorded yet)."""
    path = settings.dagster_home / "dagster.yaml"
    if not path.is_file():
        return None, None
    storage = (read_yaml(path, GovernanceError, "Dagster instance config") or {}).get("storage", {}).get("custom", {})
    kind = (storage.get("module"), storage.get("class"))
    if kind == SQLITE_STORAGE:
        history = Path(storage["config"]["base_dir"]) / "history"
        return _sqlite(history / "runs" / "index.db"), _sqlite(history / "runs.db")
    if kind == POSTGRES_STORAGE:
        if settings.dagster_database_url is None:
            raise GovernanceError(f"{path} keeps Dagster on PostgreSQL, and GOVERN_DAGSTER_DATABASE_URL is not set")
        engine = create_engine(dagster_postgres_url(settings.dagster_database_url))
        return engine, engine
    raise GovernanceError(
        f"{path}: Dagster storage {kind} is not one `govern` writes (a state dir from before the storage classes "
        "moved?): `govern init` writes it again"
    )


def _sqlite(path: Path) -> Engine | None:
    return create_engine(f"sqlite:///{path}") if path.is_file() else None


def _wiped_at(details: str | None) -> float | None:
    return json.loads(details).get("last_wipe_timestamp") if details else None


def _since_wipe(recorded: dict[str, float | None]):
    """Events of these assets, each after its last wipe (as Dagster compares: naive UTC datetimes)."""
    e = _EVENTS.c
    never = [key for key, at in recorded.items() if at is None]
    after = [
        and_(e.asset_key == key, e.timestamp > datetime.fromtimestamp(at, UTC).replace(tzinfo=None))
        for key, at in recorded.items()
        if at is not None
    ]
    return or_(e.asset_key.in_(never), *after)


def _materialization(event: str) -> Materialization:
    entry = json.loads(event)
    stored = entry["dagster_event"]["event_specific_data"]["materialization"]["metadata_entries"]
    metadata = {
        item["label"]: item["entry_data"][field]
        for item in stored
        if (field := _SCALAR_FIELDS.get(item["entry_data"]["__class__"]))
    }
    return Materialization(entry["timestamp"], entry["run_id"], metadata)
