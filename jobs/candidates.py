"""Requesting and running candidate versions.

A candidate is one new dynamic partition, `<model>-v<N>`, where N is the next
MLflow registry version (the partition's `trained_model` registers exactly that
version or fails). A partition left unregistered by a failed attempt is reused,
so failures never burn version numbers. Any other key (a typo, a version
already registered) is refused before a partition is created.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.config import GovernedModel
from governance.registry import ModelRegistry
from governance.release.requests import request_candidate
from governance.release.services import Services
from governance_assets.common import REQUEST_TAG, REQUESTED_BY_TAG, versions
from jobs import candidate_job_name
from jobs.requests import candidate_key


def next_candidate_key(instance: dg.DagsterInstance, registry: ModelRegistry, model: GovernedModel) -> str:
    """The partition key the next training run must use (added to the instance if new)."""
    key = candidate_key(registry, model)
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
    run_id: str | None = None,
) -> tuple[str, dg.ExecuteInProcessResult]:
    """Train and evaluate a new version in this process, recorded in `instance` (`govern train`, the demo, the
    tests and the pipeline benchmark run candidates this way; the daemon need not run)."""
    key = next_candidate_key(instance, registry, model)
    job = defs.resolve_job_def(candidate_job_name(model.name))
    result = job.execute_in_process(
        instance=instance,
        partition_key=key,
        tags=tags or {},
        run_config=run_config,
        raise_on_error=False,
        run_id=run_id,
    )
    return key, result


def requested_candidate(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    services: Services,
    model: GovernedModel,
    requester: tuple[str, Ed25519PrivateKey],
    run_config: dict | None = None,
    run_id: str | None = None,
    announce: Callable[[str], None] = lambda _line: None,
) -> tuple[str, dg.ExecuteInProcessResult]:
    """Sign `requester`'s request for the next version (refused: nothing is created), then run it."""
    principal, private_key = requester
    key = candidate_key(services.registry, model)
    requested = request_candidate(services, model.name, key, principal, private_key)
    announce(
        f"{key}: requested by {principal} (signed request {requested.statement[:12]}, ledger entry {requested.seq})"
    )
    tags = {REQUEST_TAG: requested.statement, REQUESTED_BY_TAG: principal}
    return run_candidate(defs, instance, services.registry, model, tags, run_config, run_id)
