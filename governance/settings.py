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
from dataclasses import dataclass, replace
from pathlib import Path

from governance.errors import GovernanceError

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

# The settings that point a process away from the embedded default, by the variable that sets each.
PRODUCTION_VARIABLES = {
    "database_url": "GOVERN_DATABASE_URL",
    "mlflow_tracking_uri": "MLFLOW_TRACKING_URI",
    "dagster_database_url": "GOVERN_DAGSTER_DATABASE_URL",
    "object_store_url": "GOVERN_OBJECT_STORE",
    "roster_override": "GOVERN_ROSTER",
    "system_key_override": "GOVERN_SYSTEM_KEY",
}


# The file in a state dir naming the config the state dir was created for.
CONFIG_RECORD = "config-path"


def recorded_config(home: Path) -> Path | None:
    """The config the state dir at `home` was created for, if it says."""
    try:
        text = (home / CONFIG_RECORD).read_text().strip()
    except OSError:
        return None
    return Path(text) if text else None


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
    object_store_url: str | None = None
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    serve_url: str = "http://127.0.0.1:8000"
    policies_override: Path | None = None
    roster_override: Path | None = None
    system_key_override: Path | None = None
    # Where a process that only reads (the console, lineage, trace, status) lands files it fetches from the
    # object store: outside the state dir, so reading writes nothing there (`objectstore.for_reading`).
    fetch_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.dagster_database_url is not None:
            dagster_postgres_url(self.dagster_database_url)  # refuses a URL Dagster's storage cannot take
        if self.object_store_url is not None:
            object.__setattr__(self, "object_store_url", object_store_url(self.object_store_url))

    @classmethod
    def from_env(cls, config_path: str | Path | None = None, home: str | Path | None = None) -> Settings:
        env = os.environ
        home_path = Path(home or env.get("GOVERN_HOME") or ".govern").expanduser().resolve()
        named = config_path or env.get("GOVERN_CONFIG")
        # The embedded default's state dir remembers its config, so a command run from another directory
        # governs the same models; production names it (a file in the state dir is never its authority).
        remembered = None if env.get("GOVERN_DATABASE_URL") else recorded_config(home_path)
        config = Path(named).expanduser().resolve() if named else remembered or Path("governance.yaml").resolve()
        return cls(
            home=home_path,
            config_path=config,
            database_url=env.get("GOVERN_DATABASE_URL") or None,
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            dagster_database_url=env.get("GOVERN_DAGSTER_DATABASE_URL") or None,
            object_store_url=env.get("GOVERN_OBJECT_STORE") or None,
            mlflow_ui_url=env.get("GOVERN_MLFLOW_UI_URL") or cls.mlflow_ui_url,
            serve_url=env.get("GOVERN_SERVE_URL") or cls.serve_url,
            policies_override=_path(env.get("GOVERN_POLICIES")),
            roster_override=_path(env.get("GOVERN_ROSTER")),
            system_key_override=_path(env.get("GOVERN_SYSTEM_KEY")),
        )

    def serving_on(self, port: int, mlflow_port: int | None = None) -> Settings:
        """These settings for a process that starts the scoring API on 127.0.0.1:`port` (`govern ui --api-port`),
        and the MLflow UI on `mlflow_port`: links name those, unless GOVERN_SERVE_URL or GOVERN_MLFLOW_UI_URL
        names the address people reach them at (a proxy)."""
        here = self
        if not os.environ.get("GOVERN_SERVE_URL"):
            here = replace(here, serve_url=f"http://127.0.0.1:{port}")
        if mlflow_port is not None and not os.environ.get("GOVERN_MLFLOW_UI_URL"):
            here = replace(here, mlflow_ui_url=f"http://127.0.0.1:{mlflow_port}")
        return here

    def require_state(self) -> None:
        """Refuse to go on without the state this process is meant to govern: an embedded default state dir
        that was never created (a mistyped or forgotten GOVERN_HOME), or one created for another config."""
        if not self.production and not self.governance_db.is_file():
            raise GovernanceError(
                f"no governance state at {self.home} (no governance.db): check --home / GOVERN_HOME, or "
                "GOVERN_DATABASE_URL for production; `govern init` creates one for your config (`make demo` or "
                "`govern ui` for the demo's)"
            )
        self.require_its_config()

    def require_its_config(self) -> None:
        """Refuse a config other than the one the embedded default's state dir was created for (a command run
        from another directory, with another governance.yaml, would govern other models under other policies).
        Production names its config in each process (GOVERN_CONFIG, mounted where each container mounts it)."""
        recorded = None if self.production else recorded_config(self.home)
        if recorded is not None and recorded != self.config_path:
            raise GovernanceError(
                f"the state dir {self.home} governs the models of {recorded}, not {self.config_path}: pass "
                f"--config {recorded} (or set GOVERN_CONFIG to it), or run `govern init --config "
                f"{self.config_path}` to make the state dir govern that config from now on"
            )

    def record_config(self, replace: bool = False) -> None:
        """Remember, in the state dir, the config it governs: once when it is created; `govern init` again
        (`replace`) points it at another."""
        record = self.home / CONFIG_RECORD
        if not self.production and (replace or not record.exists()):
            record.write_text(f"{self.config_path}\n")

    # --- policy and principals ---------------------------------------------------
    @property
    def production(self) -> bool:
        """Production is the PostgreSQL configuration; the embedded default is a single-machine sandbox."""
        return self.database_url is not None

    @property
    def api_authentication(self) -> str:
        """How the scoring API admits callers, as `/healthz` and `govern status` say it: production requires
        bearer tokens on every route but the probes; the embedded default, a single-machine sandbox, needs none."""
        return "bearer tokens" if self.production else "open (embedded default; production requires tokens)"

    def production_variables(self) -> list[str]:
        """The variables of `PRODUCTION_VARIABLES` that are set: stores or trust outside the state dir."""
        return [variable for field, variable in PRODUCTION_VARIABLES.items() if getattr(self, field) is not None]

    @property
    def policies_dir(self) -> Path:
        """The versioned Cedar policy bundle: `GOVERN_POLICIES`, else `policies/` beside the config file, else
        the copy `govern init` made in the state dir for a config that has none beside it (embedded default
        only: production never reads its rules from the state dir, which its writers could rewrite)."""
        if self.policies_override:
            return self.policies_override
        beside, own = self.config_path.parent / "policies", self.home / "policies"
        return own if not self.production and not beside.is_dir() and own.is_dir() else beside

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
        return self._store_url or f"sqlite:///{self.governance_db}"

    @property
    def decisions_url(self) -> str:
        """Decision log written by the scoring API (kept apart: it takes the write load)."""
        return self._store_url or f"sqlite:///{self.home / 'decisions.db'}"

    @property
    def _store_url(self) -> str | None:
        """`database_url`, on PostgreSQL through psycopg 3 (the stores read its types, e.g. bytea as bytes),
        whichever driver the URL names."""
        url = self.database_url
        return _with_driver(url, "psycopg") if url and _is_postgres(url) else url

    # --- MLflow ---------------------------------------------------------------
    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlflow" / "artifacts"

    @property
    def artifact_root_uri(self) -> str:
        """Where MLflow keeps model artifacts: the object store's `mlflow/` prefix, else the state dir's."""
        if self.object_store_url:
            return f"{self.object_store_url}/mlflow/artifacts"
        return self.mlflow_artifacts.as_uri()

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

    def evidence_pack_dir(self, model: str, version: str, digest: str) -> Path:
        """Where the version's evidence pack with this digest is sealed: it follows from the three, so no
        record has to remember (or can misdirect) where a pack lives."""
        return self.model_dir(model, version) / "evidence" / digest

    def relative(self, path: str | Path) -> str:
        """A path in the state dir as recorded in stores: relative to it, so a copied state dir stays whole."""
        return Path(path).resolve().relative_to(self.home).as_posix()

    def resolve(self, recorded: str | Path) -> Path:
        """A path a store recorded: relative ones are inside the state dir (older records hold absolute ones)."""
        path = Path(recorded)
        return path if path.is_absolute() else self.home / path


def dagster_postgres_url(url: str) -> str:
    """`GOVERN_DAGSTER_DATABASE_URL` with the driver dagster-postgres needs, psycopg2, whichever the URL names.

    SQLAlchemy 2.1 maps a plain `postgresql://` URL to psycopg 3, on which Dagster's event log fails at its
    first event (`syntax error at or near "$1"` in `NOTIFY run_events, $1`).
    """
    if not _is_postgres(url):
        # Never the URL itself in a message: it may carry a password.
        raise GovernanceError(
            f"GOVERN_DAGSTER_DATABASE_URL: expected a postgresql:// URL (Dagster's PostgreSQL "
            f"storage), not one of scheme {url.partition('://')[0][:30]!r}"
        )
    return _with_driver(url, "psycopg2")


def object_store_url(url: str) -> str:
    """`GOVERN_OBJECT_STORE`: an `s3://bucket[/prefix]` URI (endpoint and credentials come from boto3's own
    variables, e.g. `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`), without a trailing slash."""
    scheme, separator, rest = url.partition("://")
    bucket = rest.split("/", 1)[0]
    if scheme != "s3" or not separator or not bucket:
        raise GovernanceError(
            f"GOVERN_OBJECT_STORE: expected an s3://bucket[/prefix] URI, not one of scheme {scheme[:30]!r}"
        )
    return url.rstrip("/")


def _is_postgres(url: str) -> bool:
    scheme, separator, _ = url.partition("://")
    return bool(separator) and scheme.split("+")[0] in ("postgresql", "postgres")


def _with_driver(url: str, driver: str) -> str:
    return f"postgresql+{driver}://{url.partition('://')[2]}"


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None


def apply_offline_env() -> None:
    """Switch off telemetry of every library we use, for this process and its children."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
