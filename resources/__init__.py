"""Dagster resources: small typed interfaces over the governance core.

`governance_resources(settings)` is the one place the Dagster side turns the
resolved environment (`Settings.from_env`) into resource config; assets receive
a `GovernanceResource` and never read environment variables themselves.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import dagster as dg

from governance.config import GovernanceConfig, load_config
from governance.registry import ModelRegistry
from governance.release.services import Services
from governance.settings import Settings


class GovernanceResource(dg.ConfigurableResource):
    """Where governance state lives: state dir, config, policies, roster, databases, MLflow."""

    home: str
    config_path: str
    policies_dir: str
    roster_path: str | None = None
    system_key_path: str | None = None
    database_url: str | None = None
    mlflow_tracking_uri: str | None = None
    serve_url: str = Settings.serve_url
    mlflow_ui_url: str = Settings.mlflow_ui_url

    @cached_property
    def settings(self) -> Settings:
        return Settings(
            home=Path(self.home),
            config_path=Path(self.config_path),
            database_url=self.database_url,
            mlflow_tracking_uri=self.mlflow_tracking_uri,
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
        """Ledger, statements, control store, registry, roster and policies."""
        return Services(self.settings)

    @property
    def registry(self) -> ModelRegistry:
        return self.services.registry


def governance_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Resources for Definitions. URLs that may carry credentials stay environment references,
    so the Dagster UI shows the variable's name, never its value."""
    return {
        "governance": GovernanceResource(
            home=str(settings.home),
            config_path=str(settings.config_path),
            policies_dir=str(settings.policies_dir),
            roster_path=str(settings.roster_override) if settings.roster_override else None,
            system_key_path=str(settings.system_key_override) if settings.system_key_override else None,
            database_url=dg.EnvVar("GOVERN_DATABASE_URL") if settings.database_url else None,
            mlflow_tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI") if settings.mlflow_tracking_uri else None,
            serve_url=settings.serve_url,
            mlflow_ui_url=settings.mlflow_ui_url,
        )
    }


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None
