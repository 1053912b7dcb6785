"""`RegistryResource`: the state dir's MLflow model registry, for the assets and jobs that train, register or read
versions."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from governance.registry import ModelRegistry
from resources.state import GovernanceResource


class RegistryResource(dg.ConfigurableResource):
    """The MLflow model registry (runs, registered versions, aliases, artifact digests) of the state `governance`
    names; `store` is the core's `ModelRegistry`, opened on first use (MLflow is imported then, not when a sensor
    that may not need it is evaluated)."""

    governance: GovernanceResource

    @cached_property
    def store(self) -> ModelRegistry:
        return ModelRegistry.for_settings(self.governance.settings)
