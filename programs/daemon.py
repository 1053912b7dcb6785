"""The Dagster daemon of a state dir, started and stopped from a script (the monitoring scenario, its test, the bench).

It evaluates the sensors and schedules and launches the runs they request,
exactly as in production; the code location is the repository's workspace,
configured through the same environment the CLI reads (`Settings.from_env`).
It is started in its own session so that SIGINT reaches it and its code server
(a non-interactive shell starts background commands with SIGINT ignored, and
Dagster maps SIGTERM onto SIGINT), and stopped by its own process group.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from governance.processes import stop_process_groups
from governance.settings import Settings
from programs.instance import create_databases

WORKSPACE = Path(__file__).resolve().parents[1] / "workspace.yaml"


def daemon_environment(settings: Settings) -> dict[str, str]:
    """The environment under which the daemon and its code server rebuild exactly these settings."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(settings.dagster_home),
        "GOVERN_HOME": str(settings.home),
        "GOVERN_CONFIG": str(settings.config_path),
        "GOVERN_SERVE_URL": settings.serve_url,
        "GOVERN_MLFLOW_UI_URL": settings.mlflow_ui_url,
    }
    optional = {
        "GOVERN_POLICIES": settings.policies_override,
        "GOVERN_ROSTER": settings.roster_override,
        "GOVERN_SYSTEM_KEY": settings.system_key_override,
        "GOVERN_DATABASE_URL": settings.database_url,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "GOVERN_DAGSTER_DATABASE_URL": settings.dagster_database_url,
        "GOVERN_OBJECT_STORE": settings.object_store_url,
    }
    env.update({name: str(value) for name, value in optional.items() if value})
    return env


class DagsterDaemon:
    """`dagster-daemon run` on the state dir's instance for the duration of a `with` block."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings, self.log_path = settings, log_path
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> DagsterDaemon:
        create_databases(self.settings)
        command = [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(WORKSPACE)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                env=daemon_environment(self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=WORKSPACE.parent,
                start_new_session=True,
            )
        return self

    def __exit__(self, *_exc) -> None:
        if self.process is not None:
            stop_process_groups([self.process])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
