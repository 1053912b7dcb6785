"""What the Dagster daemon does with a sensor's run requests, done by Dagster's own code in the test's process: the
run it creates for a request, its run monitoring failing a run that never started, and a launched run executing."""

from __future__ import annotations

import logging
import time

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG
from dagster._core.test_utils import freeze_time
from dagster._daemon.monitoring.run_monitoring import monitor_starting_run


def requested_run_tags(defs: dg.Definitions, request: dg.RunRequest) -> dict[str, str]:
    """The tags the daemon gives the run of a sensor's request: its job's, the request's, its run key and partition."""
    partition = {"dagster/partition": request.partition_key} if request.partition_key else {}
    return {**defs.resolve_job_def(request.job_name).tags, **request.tags, RUN_KEY_TAG: request.run_key, **partition}


def create_requested_run(
    defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest, status: dg.DagsterRunStatus
) -> dg.DagsterRun:
    """The run the daemon creates for a sensor's request, in `status` (NOT_STARTED: not launched yet)."""
    job = defs.resolve_job_def(request.job_name)
    tags = requested_run_tags(defs, request)
    return instance.create_run_for_job(job, run_config=request.run_config, tags=tags, status=status)


def cancel_before_start(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """A person terminates a run that has not started (the UI's forced termination): Dagster marks it canceled."""
    instance.report_run_canceled(run, message="test: terminated before it started")
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED


def fail_by_run_monitoring(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun:
    """Dagster's run monitoring, after its start timeout: the run stuck before starting is failed."""
    record = instance.get_run_record_by_id(run.run_id)
    later = time.time() + instance.run_monitoring_start_timeout_seconds + 1
    with freeze_time(later):
        monitor_starting_run(instance, record, logging.getLogger("run_monitoring"))
    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    return failed


def retries_spent(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """What the daemon's retry loop records on a failed run once the run's retries are spent."""
    instance.add_run_tags(run.run_id, {"dagster/will_retry": "false"})


def execute_requested(
    defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    """A sensor's request launched and run to its end, in this process."""
    return defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance,
        run_config=request.run_config,
        partition_key=request.partition_key,
        tags={**request.tags, RUN_KEY_TAG: request.run_key},
        raise_on_error=False,
    )


def skip(result: dg.SensorResult) -> str:
    return result.skip_reason.skip_message if result.skip_reason else ""
