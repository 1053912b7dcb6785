"""Jobs per governed model.

- `<model>_candidate`: one new version (a partition) from the data snapshot to
  the sealed approval request; it stops there, waiting for a person.
- `<model>_release`: `approved_release` then `production_deployment` for one
  version; the `approvals` sensor launches it when a signed approval arrives.
- `<model>_request_candidate`: ask for the next candidate from the UI without
  naming a partition (`jobs.requests`); the `candidate_requests` sensor
  allocates and launches it.
- `<model>_abandon`: ledgers that automation gave up on a retraining request or
  a release whose runs never answered it (`jobs.abandon`); the retraining and
  approvals sensors launch it.
"""

from __future__ import annotations

import dagster as dg

from governance.config import GovernedModel
from governance_assets.common import key, versions
from governance_assets.names import candidate_job_name
from jobs.abandon import abandon_job
from jobs.requests import request_job

# Run config for runs launched in process whose story is told elsewhere (the demo's narration, a benchmark's
# figures): Dagster's console log of, say, an expected gate denial would bury it. Events still reach the
# instance's event log.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# The run queue (governance.state) runs at most one run at a time per value of this tag: per model, one
# candidate and one remediation in flight; more wait in the queue.
QUEUE_TAG = "governance/queue"


def queue_tags(model: str, lane: str) -> dict[str, str]:
    return {"governance/model": model, QUEUE_TAG: f"{model}/{lane}"}


def release_job_name(model: str) -> str:
    return f"{model}_release"


def candidate_job(model: GovernedModel) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        candidate_job_name(model.name),
        selection=dg.AssetSelection.assets(key(model, "approval_request")).upstream(),
        partitions_def=versions(model),
        tags=queue_tags(model.name, "candidate"),
        description=f"Train and evaluate one new {model.name} version, gate it, and seal its evidence for approval.",
    )


def release_job(model: GovernedModel) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        release_job_name(model.name),
        selection=dg.AssetSelection.assets(key(model, "approved_release"), key(model, "production_deployment")),
        partitions_def=versions(model),
        tags={"governance/model": model.name},
        description=f"Verify the signed approval of one {model.name} version and make it the champion.",
    )


def model_jobs(model: GovernedModel) -> list[dg.UnresolvedAssetJobDefinition | dg.JobDefinition]:
    return [candidate_job(model), release_job(model), request_job(model), abandon_job(model)]
