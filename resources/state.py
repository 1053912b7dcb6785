"""Where governance state lives, as a Dagster resource: `GovernanceResource`."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import dagster as dg

from governance.config import GovernanceConfig, load_config
from governance.release.services import Services
from governance.settings import Settings


class GovernanceResource(dg.ConfigurableResource):
    """Where governance state lives: state dir, config, policies, roster, databases, MLflow, object store. The other
    resources depend on it (nested), so this is the one resource whose config names the state."""

    home: str
    config_path: str
    policies_dir: str
    roster_path: str | None = None
    system_key_path: str | None = None
    database_url: str | None = None
    mlflow_tracking_uri: str | None = None
    object_store_url: str | None = None
    serve_url: str = Settings.serve_url
    mlflow_ui_url: str = Settings.mlflow_ui_url

    @cached_property
    def settings(self) -> Settings:
        return Settings(
            home=Path(self.home),
            config_path=Path(self.config_path),
            database_url=self.database_url,
            mlflow_tracking_uri=self.mlflow_tracking_uri,
            object_store_url=self.object_store_url,
            policies_override=Path(self.policies_dir),
            roster_override=_optional_path(self.roster_path),
            system_key_override=_optional_path(self.system_key_path),
            serve_url=self.serve_url,
            mlflow_ui_url=self.mlflow_ui_url,
        )

    @cached_property
    def config(self) -> GovernanceConfig:
        return load_config(self.settings.config_path)

    @cached_property
    def services(self) -> Services:
        """Ledger, statements, control store, registry, roster and policies, for the core functions that take them
        all (approvals, deployment, waivers, requesters, serving state). An asset that only records events or uses
        the registry takes `LedgerResource` or `RegistryResource` instead."""
        return Services(self.settings)


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None
