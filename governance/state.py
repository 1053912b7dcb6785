"""Preparing the state directory: Dagster instance config, DVC repository, folders.

Idempotent and offline. The embedded default keeps Dagster on SQLite inside
`<state dir>/dagster`, through Dagster's SQLite storage with pooled connections
(`governance_assets.storage`); with `GOVERN_DAGSTER_DATABASE_URL` set, the
instance uses PostgreSQL (dagster-postgres) instead. Telemetry and the UI's first-run
dialog are off in both.
"""

from __future__ import annotations

import yaml

from governance.data.snapshot import ensure_repo
from governance.ledger import Ledger
from governance.settings import Settings


def dagster_instance_config(settings: Settings) -> dict:
    config: dict = {"telemetry": {"enabled": False}, "nux": {"enabled": False},
                    # Remediation runs are queued; dequeue every second (default 5 s) to keep time-to-contain short.
                    "run_queue": {"dequeue_interval_seconds": 1}}
    if settings.dagster_database_url:
        config["storage"] = {"postgres": {"postgres_url": {"env": "GOVERN_DAGSTER_DATABASE_URL"}}}
    else:
        config["storage"] = {"custom": {"module": "governance_assets.storage", "class": "PooledSqliteStorage",
                                        "config": {"base_dir": str(settings.dagster_home)}}}
    return config


def prepare(settings: Settings) -> None:
    """Create the state dir layout and the governance database; (re)write dagster.yaml when the environment asks
    for another storage."""
    for path in (settings.home, settings.dagster_home, settings.mlflow_artifacts, settings.reports_dir):
        path.mkdir(parents=True, exist_ok=True)
    (settings.home / ".gitignore").write_text("*\n")
    instance_yaml = settings.dagster_home / "dagster.yaml"
    wanted = yaml.safe_dump(dagster_instance_config(settings), sort_keys=True)
    if not instance_yaml.exists() or instance_yaml.read_text() != wanted:
        instance_yaml.write_text(wanted)
    ensure_repo(settings)
    Ledger.for_settings(settings)  # its tables: a prepared state dir is one the CLI accepts
