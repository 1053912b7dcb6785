"""Monitoring sensors: each judges the complete windows of a model's decisions for its concern.

- `<model>_data_drift`, `<model>_score_drift`: live windows (Evidently, PSI);
- `<model>_fairness`: live windows (selection rate, parity, disparate impact), and
  labelled windows once outcomes arrive (equal opportunity);
- `<model>_performance`: labelled windows (AUC, KS against the model card).

A window the policy (policies/monitoring.cedar) finds alerting requests
`<model>_remediation` for it, unless another sensor already did (the report of
that run judges every concern of the window's stream). Every judged window is
also recorded as an observation of `<model>/monitoring_report`, so its figures
chart in the UI.
The cursor (JSON, per stream: the last decision seq of the last closed window)
moves only past windows that were judged or passed over for good; anything
that cannot be judged now leaves it in place and says why in the tick.

`<model>_retraining_requests` launches `<model>_candidate` for retraining that
monitoring or the retraining schedule requested (ledger `retraining.requested`),
one run at a time.
"""

from __future__ import annotations

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from governance.config import GovernedModel
from governance.errors import GovernanceError
from governance.monitoring.monitor import monitor_for, scan
from governance.monitoring.policy import Judgement
from governance.monitoring.retraining import MONITORING, SCHEDULE, monitoring_requests
from governance.monitoring.windows import LABELLED, LIVE, Cursor, CursorError
from governance.registry import version_key
from governance.release.services import SYSTEM
from governance_assets.common import REQUESTED_BY_TAG, key, versions
from jobs import candidate_job_name
from jobs.monitoring import IN_FLIGHT, candidate_in_flight, remediation_job_name, report_run_config
from resources import GovernanceResource
from sensors.guard import guard_reports_sensor

SENSORS: dict[str, dict[str, tuple[str, ...]]] = {
    "data_drift": {LIVE: ("data_drift",)},
    "score_drift": {LIVE: ("score_drift",)},
    "fairness": {LIVE: ("fairness",), LABELLED: ("equal_opportunity",)},
    "performance": {LABELLED: ("performance",)},
}
_MAX_MESSAGE = 4000


def daemon_interval(seconds: int) -> int:
    """The `minimum_interval_seconds` under which the daemon ticks every `seconds`: its sensor loop wakes every
    5 s and skips a sensor whose last tick is less than the minimum ago, and a tick started one loop earlier is
    always a hair less than a loop ago, so a 5 s minimum ticked every 10 s. One second of slack lets each
    tick land on the first loop after `seconds` (the loop stays the floor)."""
    return max(1, seconds - 1)


def monitoring_sensor(model: GovernedModel, concern: str) -> dg.SensorDefinition:
    streams = SENSORS[concern]
    name = f"{model.name}_{concern}"

    @dg.sensor(
        name=name,
        job_name=remediation_job_name(model.name),
        minimum_interval_seconds=daemon_interval(model.monitoring.check_interval_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Judges each complete window of {model.name}'s decisions for "
        f"{', '.join(c for cs in streams.values() for c in cs).replace('_', ' ')} and requests "
        f"{remediation_job_name(model.name)} when the monitoring policy alerts.",
    )
    def sense(context: dg.SensorEvaluationContext, governance: GovernanceResource) -> dg.SensorResult:
        try:
            cursor = Cursor.parse(context.cursor, tuple(streams))
        except CursorError as exc:
            return dg.SensorResult(skip_reason=str(exc))
        result = scan(monitor_for(governance.settings, record=False), model, streams, cursor)  # a tick writes nothing
        requests, covered = [], []
        for judgement in (j for j in result.judgements if j.alert):
            earlier = _reported(context.instance, model, judgement)
            if earlier is not None:
                covered.append(
                    f"window {judgement.window} is already being reported and remediated by run "
                    f"{earlier.run_id} ({earlier.tags.get('governance/alerted_by')})"
                )
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"{name}:{judgement.stream}:{judgement.window}",
                    run_config=report_run_config(
                        model, judgement.first_seq, judgement.last_seq, judgement.stream, name
                    ),
                    tags={**_window_tags(judgement), "governance/alerted_by": name, REQUESTED_BY_TAG: SYSTEM},
                )
            )
        observations = [_observation(model, name, j) for j in result.judgements]
        message = "; ".join([result.message(), *covered])[:_MAX_MESSAGE] or "nothing to judge"
        if requests:
            context.log.warning(message)
            return dg.SensorResult(run_requests=requests, cursor=result.cursor.dumps(), asset_events=observations)
        return dg.SensorResult(skip_reason=message, cursor=result.cursor.dumps(), asset_events=observations)

    return sense


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


def retraining_requests_sensor(model: GovernedModel) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{model.name}_retraining_requests",
        job_name=candidate_job_name(model.name),
        minimum_interval_seconds=daemon_interval(model.monitoring.check_interval_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Launches {candidate_job_name(model.name)} when monitoring requests retraining of "
        f"{model.name} or its retraining schedule runs (ledger retraining.requested); the candidate waits for approval.",
    )
    def retraining_requests(context: dg.SensorEvaluationContext, governance: GovernanceResource) -> dg.SensorResult:
        after = int(context.cursor or 0)
        try:
            requested = monitoring_requests(governance.services, model.name, after, triggers=(MONITORING, SCHEDULE))
        except (GovernanceError, SQLAlchemyError) as exc:
            return dg.SensorResult(
                skip_reason="the ledger cannot be read now (tried again next tick): " + str(exc).splitlines()[0]
            )
        if not requested:
            return dg.SensorResult(skip_reason="no new retraining requests from monitoring")
        latest = requested[-1]
        running = candidate_in_flight(context.instance, model)
        if running is not None:
            return dg.SensorResult(
                skip_reason=f"candidate run {running.run_id} is already in flight; it answers the "
                f"requests up to ledger entry {latest.seq}",
                cursor=str(latest.seq),
            )
        # The new partition is a request the daemon applies with the run: a preview of this tick adds nothing.
        partition = version_key(model.name, governance.registry.latest_version(model.name) + 1)
        partitions = versions(model)
        new = [] if context.instance.has_dynamic_partition(partitions.name, partition) else [partition]
        request = dg.RunRequest(
            run_key=f"retraining-{latest.seq}",
            partition_key=partition,
            tags={
                REQUESTED_BY_TAG: SYSTEM,
                "governance/trigger": latest.trigger,
                "governance/ledger_entry": str(latest.seq),
            },
        )
        return dg.SensorResult(
            run_requests=[request],
            cursor=str(latest.seq),
            dynamic_partitions_requests=[partitions.build_add_request(new)] if new else [],
        )

    return retraining_requests


def monitoring_sensors(model: GovernedModel) -> list[dg.SensorDefinition]:
    return [
        *(monitoring_sensor(model, concern) for concern in SENSORS),
        retraining_requests_sensor(model),
        guard_reports_sensor(model, daemon_interval(model.monitoring.check_interval_seconds)),
    ]
