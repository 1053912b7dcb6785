"""The candidate-requests sensor: a successful `<model>_request_candidate` run (jobs.requests) becomes a candidate.

One sensor for every governed model (sensors.fleet). For a model's oldest successful request run after its
position (the run's update time), a tick asks the daemon to add the next version's dynamic partition and
launches `<model>_candidate` for it, both applied by the daemon with the tick (the evaluation writes nothing);
one candidate per request, and none while a run of that version is in flight.

A model the cursor does not name yet starts with its first request run, as each model's own
`<model>_candidate_requests` sensor of earlier releases did on its first tick; a request a candidate run was
launched for already is passed over (Dagster's own run-key check is scoped to a sensor's name, so it would not
see the runs those sensors launched).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG

from governance.config import GovernedModel
from governance.fleet import CursorError
from governance.registry import ModelRegistry
from governance_assets.common import REQUESTED_BY_TAG, versions
from jobs import candidate_job_name
from jobs.requests import UNSIGNED, candidate_key, request_job_name
from resources import RegistryResource
from sensors.fleet import Visit, fleet_tick

CANDIDATE_REQUESTS = "candidate_requests"
_EXAMPLE = '{"models": {"credit_scoring": 1767225600.5}}'


def candidate_requests_sensor(models: Sequence[GovernedModel], jobs: Sequence) -> dg.SensorDefinition:
    candidates = [job for job in jobs if job.name in {candidate_job_name(m.name) for m in models}]

    @dg.sensor(
        name=CANDIDATE_REQUESTS,
        jobs=candidates,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="For each successful `<model>_request_candidate` run of a governed model, adds the model's "
        "next version's partition and launches `<model>_candidate` for it.",
    )
    def candidate_requests(context: dg.SensorEvaluationContext, registry: RegistryResource) -> dg.SensorResult:
        return fleet_tick(
            context,
            models,
            lambda model, position: _visit(context.instance, registry.store, model, _since(position)),
            _EXAMPLE,
            "no new candidate requests",
        )

    return candidate_requests


def _visit(instance: dg.DagsterInstance, registry: ModelRegistry, model: GovernedModel, since: float) -> Visit:
    done = _requests_after(instance, model, since)
    launched = _launched(instance, model, done)
    waiting = [record for record in done if _run_key(record.dagster_run) not in launched]
    if not waiting:
        return Visit(done[-1].update_timestamp.timestamp() if done else since)
    key = candidate_key(registry, model)
    if _in_flight(instance, key):
        return Visit(since, notes=(f"{key} already has a candidate run; {len(waiting)} request(s) wait for it to end",))
    oldest = waiting[0]  # one candidate per request, oldest first
    partitions = versions(model).name
    added = [] if instance.has_dynamic_partition(partitions, key) else [key]
    return Visit(
        oldest.update_timestamp.timestamp(),
        requests=(
            dg.RunRequest(
                job_name=candidate_job_name(model.name),
                partition_key=key,
                run_key=_run_key(oldest.dagster_run),
                tags={REQUESTED_BY_TAG: UNSIGNED, "governance/request_run": oldest.dagster_run.run_id},
            ),
        ),
        partitions=(dg.AddDynamicPartitionsRequest(partitions, added),) if added else (),
    )


def _since(position: Any) -> float:
    if position is None:
        return 0.0
    if isinstance(position, bool) or not isinstance(position, int | float):
        raise CursorError(
            f"cursor position {position!r:.200} is not a candidate-requests position (expected the update time of "
            "the last request run answered, like 1767225600.5); reset the cursor in the Dagster UI"
        )
    return float(position)


def _requests_after(instance: dg.DagsterInstance, model: GovernedModel, since: float) -> list[dg.RunRecord]:
    """The model's successful request runs last updated after `since`, oldest first."""
    done = instance.get_run_records(
        dg.RunsFilter(
            job_name=request_job_name(model.name),
            statuses=[dg.DagsterRunStatus.SUCCESS],
            updated_after=datetime.fromtimestamp(since, UTC),
        ),
        ascending=True,
    )
    return [record for record in done if record.update_timestamp.timestamp() > since]


def _launched(instance: dg.DagsterInstance, model: GovernedModel, done: list[dg.RunRecord]) -> set[str]:
    """The run keys of these requests that a candidate run was launched for already."""
    if not done:
        return set()
    keys = [_run_key(record.dagster_run) for record in done]
    runs = instance.get_runs(dg.RunsFilter(job_name=candidate_job_name(model.name), tags={RUN_KEY_TAG: keys}))
    return {run.tags[RUN_KEY_TAG] for run in runs}


def _run_key(request_run: dg.DagsterRun) -> str:
    return f"request-{request_run.run_id}"


def _in_flight(instance: dg.DagsterInstance, key: str) -> bool:
    """A run of this partition that has not ended (or ended well): another candidate would only fail."""
    ended_badly = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": key}), limit=20)
    return any(run.status not in ended_badly for run in runs)
