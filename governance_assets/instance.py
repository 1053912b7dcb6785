"""The Dagster instance of a state dir, for the CLI (the UI and daemon find it through DAGSTER_HOME)."""

import dagster as dg

from governance import state
from governance.settings import Settings


def open_instance(settings: Settings) -> dg.DagsterInstance:
    """Prepare the state dir and return its persistent Dagster instance."""
    state.prepare(settings)
    return dg.DagsterInstance.from_config(str(settings.dagster_home))
