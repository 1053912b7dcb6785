"""Dagster resources: small typed interfaces over the governance core.

- `GovernanceResource` (state.py): where governance state lives (state dir, config, policies, databases, MLflow),
  and the core's services (`Services`) for the core functions that take them all;
- `LedgerResource` (ledger.py): the audit ledger: record a typed event and link the materialization to it;
- `RegistryResource` (registry.py): the MLflow model registry;
- `ReportIOManager` (reports.py): the code location's `io_manager`: stores every output an asset hands another
  as canonical JSON and verifies its digest when a later step reads it; nothing is pickled.

`governance_resources(settings)` is the one place the Dagster side turns the resolved environment
(`Settings.from_env`) into resource config; assets never read environment variables themselves. The other
resources depend on `GovernanceResource` (nested resources), so each says where state lives in one place; an asset
takes the small ones it uses.
"""

from __future__ import annotations

import dagster as dg

from governance.settings import Settings
from resources.ledger import LedgerResource
from resources.registry import RegistryResource
from resources.reports import ReportIOManager
from resources.state import GovernanceResource

__all__ = ["GovernanceResource", "LedgerResource", "RegistryResource", "ReportIOManager", "governance_resources"]


def governance_resources(settings: Settings) -> dict[str, dg.ConfigurableResource | dg.ConfigurableIOManager]:
    """Resources for Definitions. URLs that may carry credentials, and the object store beside them, stay
    environment references, so the Dagster UI shows the variable's name, never its value."""
    governance = GovernanceResource(
        home=str(settings.home),
        config_path=str(settings.config_path),
        policies_dir=str(settings.policies_dir),
        roster_path=str(settings.roster_override) if settings.roster_override else None,
        system_key_path=str(settings.system_key_override) if settings.system_key_override else None,
        database_url=dg.EnvVar("GOVERN_DATABASE_URL") if settings.database_url else None,
        mlflow_tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI") if settings.mlflow_tracking_uri else None,
        object_store_url=dg.EnvVar("GOVERN_OBJECT_STORE") if settings.object_store_url else None,
        serve_url=settings.serve_url,
        mlflow_ui_url=settings.mlflow_ui_url,
    )
    return {
        "governance": governance,
        "ledger": LedgerResource(governance=governance),
        "registry": RegistryResource(governance=governance),
        # Dagster's default key: an output that names no IO manager is never pickled into the state dir
        "io_manager": ReportIOManager(governance=governance),
    }
