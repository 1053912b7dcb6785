"""Requesting and running candidate versions.

A candidate is one new dynamic partition, `<model>-v<N>`, where N is the next
MLflow registry version (the partition's `trained_model` registers exactly that
version or fails). A partition left unregistered by a failed attempt is reused,
so failures never burn version numbers.
"""

from __future__ import annotations

import dagster as dg

from governance.config import GovernedModel
from governance.registry import ModelRegistry, version_key
from governance_assets.common import versions
from jobs import candidate_job_name


def next_candidate_key(instance: dg.DagsterInstance, registry: ModelRegistry, model: GovernedModel) -> str:
    """The partition key the next training run must use (added to the instance if new)."""
    key = version_key(model.name, registry.latest_version(model.name) + 1)
    partitions = versions(model)
    if not instance.has_dynamic_partition(partitions.name, key):
        instance.add_dynamic_partitions(partitions.name, [key])
    return key


def run_candidate(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    registry: ModelRegistry,
    model: GovernedModel,
    tags: dict[str, str] | None = None,
    run_config: dict | None = None,
) -> tuple[str, dg.ExecuteInProcessResult]:
    """Train and evaluate a new version in this process, recorded in `instance` (the demo, the tests and the
    pipeline benchmark run candidates this way)."""
    key = next_candidate_key(instance, registry, model)
    job = defs.resolve_job_def(candidate_job_name(model.name))
    result = job.execute_in_process(
        instance=instance, partition_key=key, tags=tags or {}, run_config=run_config, raise_on_error=False
    )
    return key, result
