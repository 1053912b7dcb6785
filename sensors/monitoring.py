"""Monitoring sensors: one per concern, each judging the complete windows of every governed model's decisions.

- `monitoring_data_drift`: live windows (Evidently);
- `monitoring_score_drift`: live windows (score PSI, and the shift of the shares of decisions approved,
  referred and declined: both read only the window's scores);
- `monitoring_fairness`: live windows (selection rate, parity, disparate impact), and
  labelled windows once outcomes arrive (equal opportunity);
- `monitoring_performance`: labelled windows (AUC, KS against the model card).

A tick walks the models in turn within a time budget (governance.monitoring.fleet),
so the sensors the daemon evaluates do not grow with the models it governs.
A window the policy (policies/monitoring.cedar) finds alerting requests that
model's `<model>_remediation` for it, unless another sensor already did (the report
of that run judges every concern of the window's stream). Every judged window is
also recorded as an observation of `<model>/monitoring_report`, so its figures
chart in the UI.
The cursor (JSON: per model and stream, the last decision seq of the last closed
window; and the model the next tick resumes with) moves only past windows that
were judged or passed over for good; anything that cannot be judged now leaves it
in place and says why in the tick.

`retraining_requests` launches `<model>_candidate` for retraining that monitoring or
the model's retraining schedule requested (ledger `events.RetrainingRequested`); Dagster's
run queue runs one candidate per model at a time (jobs.queue_tags). Its cursor (per model,
the last request answered) moves only once a run answering the request succeeded, so a run that never started or failed
does not drop it: the request is launched again, and after MAX_ATTEMPTS runs given up
and ledgered as such (sensors.attempts). Like every sensor here it writes nothing while
evaluated: a new version's partition is requested from the daemon with the run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from governance import events
from governance.config import GovernedModel
from governance.errors import GovernanceError
from governance.fleet import CursorError
from governance.monitoring.fleet import FleetCursor, scan_fleet
from governance.monitoring.monitor import monitor_for
from governance.monitoring.policy import Judgement
from governance.monitoring.retraining import MONITORING, SCHEDULE, monitoring_requests
from governance.monitoring.windows import LABELLED, LIVE
from governance.release.services import SYSTEM
from governance_assets.common import REQUESTED_BY_TAG, key, versions
from jobs import candidate_job_name
from jobs.abandon import abandon_job_name
from jobs.monitoring import (
    IN_FLIGHT,
    remediation_job_name,
    report_run_config,
    retraining_runs,
    retraining_tags,
)
from jobs.requests import candidate_key
from resources import GovernanceResource
from sensors.attempts import MAX_ATTEMPTS, attempts, give_up, partition_in_flight
from sensors.guard import guard_reports_sensor

SENSORS: dict[str, dict[str, tuple[str, ...]]] = {
    "data_drift": {LIVE: ("data_drift",)},
    "score_drift": {LIVE: ("score_drift", "decision_rate_drift")},
    "fairness": {LIVE: ("fairness",), LABELLED: ("equal_opportunity",)},
    "performance": {LABELLED: ("performance",)},
}
_MAX_MESSAGE = 4000
RETRAINING_SENSOR = "retraining_requests"


def monitoring_sensor_name(concern: str) -> str:
    return f"monitoring_{concern}"


def daemon_interval(seconds: int) -> int:
    """The `minimum_interval_seconds` under which the daemon ticks every `seconds`: its sensor loop wakes every
    5 s and skips a sensor whose last tick is less than the minimum ago, and a tick started one loop earlier is
    always a hair less than a loop ago, so a 5 s minimum ticked every 10 s. One second of slack lets each
    tick land on the first loop after `seconds` (the loop stays the floor)."""
    return max(1, seconds - 1)


def monitoring_sensor(models: Sequence[GovernedModel], concern: str, jobs: Sequence) -> dg.SensorDefinition:
    streams = SENSORS[concern]
    name = monitoring_sensor_name(concern)
    judged = ", ".join(c for cs in streams.values() for c in cs).replace("_", " ")

    @dg.sensor(
        name=name,
        jobs=list(jobs),
        minimum_interval_seconds=daemon_interval(min(m.monitoring.check_interval_seconds for m in models)),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Judges each complete window of every governed model's decisions for {judged}, and "
        "requests that model's remediation job when the monitoring policy alerts.",
    )
    def sense(context: dg.SensorEvaluationContext, governance: GovernanceResource) -> dg.SensorResult:
        try:
            cursor = FleetCursor.parse(context.cursor)
        except CursorError as exc:
            return dg.SensorResult(skip_reason=str(exc))
        monitor = monitor_for(governance.settings, record=False)  # a tick writes nothing; the run records
        result = scan_fleet(monitor, models, streams, cursor)
        requests, covered, observations = [], [], []
        for model, scanned in result.scans:
            for judgement in (j for j in scanned.judgements if j.alert):
                earlier = _reported(context.instance, model, judgement)
                if earlier is None:
                    requests.append(_remediation_request(model, judgement, name))
                else:
                    covered.append(
                        f"{model.name} window {judgement.window} is already being reported and remediated by run "
                        f"{earlier.run_id} ({earlier.tags.get('governance/alerted_by')})"
                    )
            observations += [_observation(model, name, j) for j in scanned.judgements]
        message = "; ".join([result.message(), *covered])[:_MAX_MESSAGE] or "nothing to judge"
        if requests:
            context.log.warning(message)
            return dg.SensorResult(run_requests=requests, cursor=result.cursor.dumps(), asset_events=observations)
        return dg.SensorResult(skip_reason=message, cursor=result.cursor.dumps(), asset_events=observations)

    return sense


def _remediation_request(model: GovernedModel, judgement: Judgement, sensor: str) -> dg.RunRequest:
    return dg.RunRequest(
        job_name=remediation_job_name(model.name),
        run_key=f"{model.name}:{sensor}:{judgement.stream}:{judgement.window}",
        run_config=report_run_config(model, judgement.first_seq, judgement.last_seq, judgement.stream, sensor),
        tags={**_window_tags(judgement), "governance/alerted_by": sensor, REQUESTED_BY_TAG: SYSTEM},
    )


def _window_tags(judgement: Judgement) -> dict[str, str]:
    return {"governance/window": judgement.window, "governance/stream": judgement.stream}


def _reported(instance: dg.DagsterInstance, model: GovernedModel, judgement: Judgement) -> dg.DagsterRun | None:
    """A remediation run another sensor requested for this window, in flight or done (its report judges every
    concern of the stream); a failed one does not count, so the window is requested again."""
    runs = instance.get_runs(
        dg.RunsFilter(
            job_name=remediation_job_name(model.name),
            tags=_window_tags(judgement),
            statuses=[*IN_FLIGHT, dg.DagsterRunStatus.SUCCESS],
        ),
        limit=1,
    )
    return runs[0] if runs else None


def _observation(model: GovernedModel, sensor: str, judgement: Judgement) -> dg.AssetObservation:
    figures = {name: dg.MetadataValue.float(float(value)) for name, value in judgement.attributes.items()}
    return dg.AssetObservation(
        asset_key=key(model, "monitoring_report"),
        metadata={
            "window": judgement.window,
            "stream": judgement.stream,
            "version": dg.MetadataValue.int(judgement.version),
            "decisions": dg.MetadataValue.int(judgement.decisions),
            "alert": judgement.alert,
            "sensor": sensor,
            "summary": judgement.summary(),
            **figures,
        },
    )


def retraining_requests_sensor(models: Sequence[GovernedModel], jobs: Sequence) -> dg.SensorDefinition:
    @dg.sensor(
        name=RETRAINING_SENSOR,
        jobs=list(jobs),
        minimum_interval_seconds=daemon_interval(min(m.monitoring.check_interval_seconds for m in models)),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches a model's candidate job when monitoring or its retraining schedule requests its "
        f"retraining (ledger {events.RetrainingRequested.action}); a request stays open until a run answering it succeeds, "
        f"or until its giving up after {MAX_ATTEMPTS} runs is ledgered ({events.RetrainingAbandoned.action}). The "
        "candidate waits for approval.",
    )
    def retraining_requests(context: dg.SensorEvaluationContext, governance: GovernanceResource) -> dg.SensorResult:
        try:
            answered = _answered(context.cursor)
        except CursorError as exc:
            return dg.SensorResult(skip_reason=str(exc))
        try:
            requested = monitoring_requests(
                governance.services,
                None,
                min(answered.get(m.name, 0) for m in models),
                triggers=(MONITORING, SCHEDULE),
            )
        except (GovernanceError, SQLAlchemyError) as exc:
            return dg.SensorResult(
                skip_reason="the ledger cannot be read now (tried again next tick): " + str(exc).splitlines()[0]
            )
        requests, partitions, notes = [], [], []
        for model in models:
            open_requests = [r for r in requested if r.model == model.name and r.seq > answered.get(model.name, 0)]
            if not open_requests:
                continue
            request, note, done = _retraining(context.instance, governance, model, open_requests[-1])
            if request is not None:
                requests.append(request)
                partitions += _new_partition(context.instance, model, request)
            notes.append(f"{model.name}: {note}")
            if done:
                answered[model.name] = open_requests[-1].seq
        cursor = json.dumps(answered, sort_keys=True, separators=(",", ":"))
        message = "; ".join(notes)[:_MAX_MESSAGE] or "no open retraining requests"
        if requests:
            # The new partitions are requests the daemon applies with the runs: a preview of this tick adds nothing.
            return dg.SensorResult(run_requests=requests, cursor=cursor, dynamic_partitions_requests=partitions)
        return dg.SensorResult(skip_reason=message, cursor=cursor)

    return retraining_requests


def _answered(cursor: str | None) -> dict[str, int]:
    """Per model, the last retraining request a run has answered (or that was given up on)."""
    try:
        stored = json.loads(cursor) if cursor else {}
    except ValueError:
        stored = None
    if not isinstance(stored, dict) or not all(isinstance(seq, int) for seq in stored.values()):
        raise CursorError(
            f"sensor cursor {str(cursor)[:200]!r} is not a retraining cursor (expected JSON like "
            '{"credit_scoring": 57}); reset it in the Dagster UI'
        )
    return stored


def _retraining(
    instance: dg.DagsterInstance,
    governance: GovernanceResource,
    model: GovernedModel,
    latest: events.RetrainingRequested,
) -> tuple[dg.RunRequest | None, str, bool]:
    """For the latest open request of a model: the run to launch (if any), what happens, and whether the request
    is settled (sensors.attempts: up to MAX_ATTEMPTS runs, then the giving up is ledgered)."""
    entry = latest.seq
    tried = attempts(instance, retraining_runs(instance, model, latest))
    if tried.answer is not None:
        return None, f"retraining request {entry} answered by a successful candidate run", True
    if tried.waiting is not None:
        return None, f"waits for candidate run {tried.waiting.run_id} ({tried.waiting.status.value}) to end", False
    if tried.given_up:
        request, note, settled = give_up(
            instance, governance.services, model, entry, tried, f"retraining-{model.name}-{entry}-abandoned"
        )
        return request, f"retraining request {entry} {note}", settled
    partition = candidate_key(governance.services.registry, model)
    # Another candidate in flight is Dagster's to serialise (the run queue); one training this very version, not
    # registered yet, would leave a second run of it nothing to train.
    if partition_in_flight(instance, partition):
        return None, f"waits: {partition} already has a candidate run", False
    request = dg.RunRequest(
        job_name=candidate_job_name(model.name),
        run_key=f"retraining-{model.name}-{entry}-{tried.attempt}",
        partition_key=partition,
        tags={REQUESTED_BY_TAG: SYSTEM, **retraining_tags(latest)},
    )
    return request, f"launches {partition} (attempt {tried.attempt}) for retraining request {entry}", False


def _new_partition(
    instance: dg.DagsterInstance, model: GovernedModel, request: dg.RunRequest
) -> list[dg.AddDynamicPartitionsRequest]:
    """The request to add the run's partition, unless a failed attempt left it (it is reused)."""
    partitions = versions(model)
    if request.partition_key is None or instance.has_dynamic_partition(partitions.name, request.partition_key):
        return []
    return [partitions.build_add_request([request.partition_key])]


def fleet_sensors(models: Sequence[GovernedModel], jobs: Sequence) -> list[dg.SensorDefinition]:
    """One sensor per monitoring concern, one for retraining requests and one for the guard's reports, for
    every governed model: their number does not grow with the models."""
    remediation = [j for j in jobs if j.name in {remediation_job_name(m.name) for m in models}]
    launched = {name for m in models for name in (candidate_job_name(m.name), abandon_job_name(m.name))}
    candidates = [j for j in jobs if j.name in launched]
    interval = daemon_interval(min(m.monitoring.check_interval_seconds for m in models))
    return [
        *(monitoring_sensor(models, concern, remediation) for concern in SENSORS),
        retraining_requests_sensor(models, candidates),
        guard_reports_sensor(models, remediation, interval),
    ]
