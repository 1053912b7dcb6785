"""Preparing the state directory: Dagster instance config, DVC repository, folders.

Idempotent and offline. The embedded default keeps Dagster on SQLite inside
`<state dir>/dagster`, through Dagster's SQLite storage with pooled connections
(`speedups`); with `GOVERN_DAGSTER_DATABASE_URL` set, the
instance uses PostgreSQL (dagster-postgres, on psycopg2 whatever driver the URL names:
`programs.postgres_storage`) instead. Telemetry and the UI's first-run
dialog are off in both; run monitoring, run retries and threaded sensor
evaluation are on in both.
"""

from __future__ import annotations

import yaml

from governance.data.snapshot import ensure_repo
from governance.errors import GovernanceError
from governance.ledger import Ledger
from governance.registry import ModelRegistry
from governance.settings import Settings
from governance.yamlfile import read_yaml

# The daemon fails a run that has not started, or not stopped after a cancel, within these; a launcher that
# checks its workers' health (k8s, docker) also has a run whose worker died failed. A governed run left
# hanging would otherwise hold its model's retraining and release back for good.
RUN_MONITORING = {
    "enabled": True,
    "start_timeout_seconds": 180,
    "cancel_timeout_seconds": 180,
    "poll_interval_seconds": 30,
}
# Remediation runs are queued; dequeue every second (default 5 s) to keep time-to-contain short. Per model, one
# candidate and one remediation run at a time (the `governance/queue` tag jobs/ sets); remediation runs carry a
# higher `dagster/priority`, so they leave the queue before candidates.
RUN_QUEUE = {
    "dequeue_interval_seconds": 1,
    "tag_concurrency_limits": [{"key": "governance/queue", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}],
}
# A run that failed because its worker crashed or was lost is launched again, twice at most. A run that failed
# on its own steps (a blocking gate, a refused approval) is an outcome, not a crash: never retried.
RUN_RETRIES = {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
# The daemon evaluates the sensors on a pool of threads instead of one after another, so that a monitoring tick
# judging windows (seconds of Evidently) does not hold back the approvals or guard-report sensors' ticks.
SENSOR_THREADS = {"use_threads": True, "num_workers": 4}


def dagster_instance_config(settings: Settings) -> dict:
    config: dict = {
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
        "run_queue": RUN_QUEUE,
        "run_monitoring": RUN_MONITORING,
        "run_retries": RUN_RETRIES,
        "sensors": SENSOR_THREADS,
    }
    if settings.dagster_database_url:
        # The URL stays an environment reference: the UI shows the variable's name, never a password.
        config["storage"] = {
            "custom": {
                "module": "programs.postgres_storage",
                "class": "PostgresStorage",
                "config": {"postgres_url": {"env": "GOVERN_DAGSTER_DATABASE_URL"}},
            }
        }
    else:
        config["storage"] = {
            "custom": {
                "module": "speedups",
                "class": "PooledSqliteStorage",
                "config": {"base_dir": str(settings.dagster_home)},
            }
        }
    return config


def prepare(settings: Settings) -> None:
    """Create the state dir layout and the governance database; (re)write the settings of dagster.yaml that
    `dagster_instance_config` owns (storage follows the environment), keeping any others an operator added
    there (a run launcher, a run coordinator)."""
    for path in (settings.home, settings.dagster_home, settings.mlflow_artifacts, settings.reports_dir):
        path.mkdir(parents=True, exist_ok=True)
    (settings.home / ".gitignore").write_text("*\n")
    instance_yaml = settings.dagster_home / "dagster.yaml"
    present = read_yaml(instance_yaml, GovernanceError, "Dagster instance config") if instance_yaml.exists() else None
    if present is not None and not isinstance(present, dict):
        raise GovernanceError(f"{instance_yaml}: expected a mapping of Dagster instance settings")
    wanted = {**(present or {}), **dagster_instance_config(settings)}
    if wanted != present:
        instance_yaml.write_text(yaml.safe_dump(wanted, sort_keys=True))
    ensure_repo(settings)
    ModelRegistry.prepare(settings)
    Ledger.for_settings(settings)  # its tables: a prepared state dir is one the CLI accepts
    settings.record_config()
