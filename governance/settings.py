"""Where governance state lives and which services back it.

This is the one place that reads the environment. Everything else receives a
`Settings` (the Dagster resources wrap it, the CLI builds it from its options).

Embedded default: everything under one state directory (`.govern/`, or
`GOVERN_HOME`) on SQLite files. Production: the same code with
`GOVERN_DATABASE_URL` (ledger, signed statements, control state, decision log),
`MLFLOW_TRACKING_URI` and `GOVERN_DAGSTER_DATABASE_URL` pointing at PostgreSQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Written into the process environment so that libraries and the subprocesses
# they spawn (DVC, MLflow, Great Expectations) never phone home.
OFFLINE_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


# The policies shipped with the project, which `govern init` copies for a config that has none beside it.
BUNDLED_POLICIES = Path(__file__).resolve().parents[1] / "policies"


@dataclass(frozen=True)
class Settings:
    """Resolved locations of every piece of governance state."""

    home: Path
    config_path: Path
    database_url: str | None = None
    mlflow_tracking_uri: str | None = None
    dagster_database_url: str | None = None
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    serve_url: str = "http://127.0.0.1:8000"
    policies_override: Path | None = None
    roster_override: Path | None = None
    system_key_override: Path | None = None

    @classmethod
    def from_env(cls, config_path: str | Path | None = None, home: str | Path | None = None) -> "Settings":
        env = os.environ
        home_path = Path(home or env.get("GOVERN_HOME") or ".govern").expanduser().resolve()
        config = Path(config_path or env.get("GOVERN_CONFIG") or "governance.yaml").expanduser().resolve()
        return cls(
            home=home_path,
            config_path=config,
            database_url=env.get("GOVERN_DATABASE_URL") or None,
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            dagster_database_url=env.get("GOVERN_DAGSTER_DATABASE_URL") or None,
            mlflow_ui_url=env.get("GOVERN_MLFLOW_UI_URL") or cls.mlflow_ui_url,
            serve_url=env.get("GOVERN_SERVE_URL") or cls.serve_url,
            policies_override=_path(env.get("GOVERN_POLICIES")),
            roster_override=_path(env.get("GOVERN_ROSTER")),
            system_key_override=_path(env.get("GOVERN_SYSTEM_KEY")),
        )

    # --- policy and principals ---------------------------------------------------
    @property
    def production(self) -> bool:
        """Production is the PostgreSQL configuration; the embedded default is a single-machine sandbox."""
        return self.database_url is not None

    @property
    def policies_dir(self) -> Path:
        """The versioned Cedar policy bundle: `GOVERN_POLICIES`, else `policies/` beside the config file, else
        the copy `govern init` made in the state dir for a config that has none beside it."""
        if self.policies_override:
            return self.policies_override
        beside, own = self.config_path.parent / "policies", self.home / "policies"
        return own if not beside.is_dir() and own.is_dir() else beside

    @property
    def roster_path(self) -> Path:
        """Who may sign what. `GOVERN_ROSTER`; else, in the embedded default only, the demo roster
        `govern demo` writes into the state dir; else the versioned `policies/roster.yaml`.
        Production never falls back to a roster in the state dir."""
        if self.roster_override:
            return self.roster_override
        demo = self.home / "roster.yaml"
        if not self.production and demo.is_file():
            return demo
        return self.policies_dir / "roster.yaml"

    # --- governance databases -------------------------------------------------
    @property
    def governance_db(self) -> Path:
        """The embedded default's database of ledger, statements and control state."""
        return self.home / "governance.db"

    @property
    def ledger_url(self) -> str:
        """Ledger, signed statements, nonces and control state (kill switch)."""
        return self.database_url or f"sqlite:///{self.governance_db}"

    @property
    def decisions_url(self) -> str:
        """Decision log written by the scoring API (kept apart: it takes the write load)."""
        return self.database_url or f"sqlite:///{self.home / 'decisions.db'}"

    # --- MLflow ---------------------------------------------------------------
    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlflow" / "artifacts"

    # --- Dagster ----------------------------------------------------------------
    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    # --- files ------------------------------------------------------------------
    @property
    def dvc_repo(self) -> Path:
        return self.home / "data"

    @property
    def dvc_remote(self) -> Path:
        return self.home / "dvc-remote"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def keys_dir(self) -> Path:
        """Demo principals' private keys. Real principals keep theirs outside the state dir."""
        return self.home / "keys"

    @property
    def system_key_path(self) -> Path:
        """The `system` principal's private key, which signs automated actions and checkpoints:
        `GOVERN_SYSTEM_KEY`, else the state dir's keys (the demo's)."""
        return self.system_key_override or self.keys_dir / "system.key"

    def model_dir(self, model: str, version: str | None = None) -> Path:
        base = self.reports_dir / model
        return base / version if version else base


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None


def apply_offline_env() -> None:
    """Switch off telemetry of every library we use, for this process and its children."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
