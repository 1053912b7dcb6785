"""The candidate-requests sensor: a successful `<model>_request_candidate` run (jobs.requests) becomes a candidate.

One sensor for every governed model (sensors.fleet). For a model's oldest successful request run after its
position (the run's update time), a tick asks the daemon to add the next version's dynamic partition and
launches `<model>_candidate` for it, both applied by the daemon with the tick (the evaluation writes nothing);
one candidate per request, and none while a run of that version is in flight. The position moves past a request
once a candidate run answered it (succeeded, or failed on its own steps); a candidate run that never started, lost
its worker or was canceled is launched again, up to MAX_ATTEMPTS runs (sensors.attempts), and then the request is
given up with a warning in the tick's log.

A model the cursor does not name yet starts with its first request run, as each model's own
`<model>_candidate_requests` sensor of earlier releases did on its first tick; a request a candidate run was
launched for already is passed over (Dagster's own run-key check is scoped to a sensor's name, so it would not
see the runs those sensors launched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
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
from sensors.attempts import MAX_ATTEMPTS, Attempts, attempts, partition_in_flight, reached_an_outcome
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
    # The position stays before the oldest request run no candidate run has answered yet (sensors.attempts), so a
    # candidate run that never ran does not drop its request.
    position, given_up = since, []
    for record in _requests_after(instance, model, since):
        tried = attempts(instance, _candidates(instance, model, record.dagster_run), reached_an_outcome)
        if tried.answer is None and not tried.given_up:
            opened = _answer(instance, registry, model, record.dagster_run, tried)
            return replace(opened, position=position, warnings=(*given_up, *opened.warnings))
        if tried.answer is None:
            given_up.append(
                f"request run {record.dagster_run.run_id} given up after {len(tried.runs)} candidate runs that did "
                f"not answer it ({tried.described()}); launch {request_job_name(model.name)} again"
            )
        position = record.update_timestamp.timestamp()
    return Visit(position, warnings=tuple(given_up))


def _answer(
    instance: dg.DagsterInstance,
    registry: ModelRegistry,
    model: GovernedModel,
    request_run: dg.DagsterRun,
    tried: Attempts,
) -> Visit:
    """For an open request: the candidate to launch, unless a run of it or of its version is under way."""
    if tried.waiting is not None:
        return Visit(
            None, notes=(f"candidate run {tried.waiting.run_id} ({tried.waiting.status.value}) has not ended",)
        )
    key = candidate_key(registry, model)
    if partition_in_flight(instance, key):
        return Visit(None, notes=(f"{key} already has a candidate run; the next request waits for it to end",))
    partitions = versions(model).name
    added = [] if instance.has_dynamic_partition(partitions, key) else [key]
    return Visit(
        None,
        requests=(
            dg.RunRequest(
                job_name=candidate_job_name(model.name),
                partition_key=key,
                run_key=_run_key(request_run, tried.attempt),
                tags={REQUESTED_BY_TAG: UNSIGNED, "governance/request_run": request_run.run_id},
            ),
        ),
        partitions=(dg.AddDynamicPartitionsRequest(partitions, added),) if added else (),
        warnings=(f"launched again (attempt {tried.attempt}) after {tried.described()}",) if tried.runs else (),
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


def _candidates(instance: dg.DagsterInstance, model: GovernedModel, request_run: dg.DagsterRun) -> list[dg.DagsterRun]:
    """The candidate runs launched for a request run, by this sensor or a model's own sensor of earlier releases
    (Dagster's retries keep their run key), newest first."""
    keys = [_run_key(request_run, attempt) for attempt in range(1, MAX_ATTEMPTS + 1)]
    return list(instance.get_runs(dg.RunsFilter(job_name=candidate_job_name(model.name), tags={RUN_KEY_TAG: keys})))


def _run_key(request_run: dg.DagsterRun, attempt: int = 1) -> str:
    first = f"request-{request_run.run_id}"
    return first if attempt == 1 else f"{first}-{attempt}"
