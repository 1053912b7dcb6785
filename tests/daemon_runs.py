"""What the Dagster daemon does with a sensor's run requests, done by Dagster's own code in the test's process: the
run it creates for a request, its run monitoring failing a run that never started, and a launched run executing."""

from __future__ import annotations

import logging
import time

import dagster as dg
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.run_coordinator import SubmitRunContext
from dagster._core.storage.tags import RUN_KEY_TAG
from dagster._core.test_utils import freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.monitoring.run_monitoring import monitor_starting_run
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from programs.topology import LOCATION


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


def queued_run(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.DagsterRun:
    """The run of a sensor's request as the daemon submits it to the instance's run queue: with the origin of the
    job in the workspace's code location (a queued run needs one, to be launched from), enqueued."""
    code_location = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(module_name="definitions", attribute="defs"), location_name=LOCATION
    )
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(code_location, SINGLETON_REPOSITORY_NAME), request.job_name)
    run = instance.create_run_for_job(
        defs.resolve_job_def(request.job_name),
        run_config=request.run_config,
        tags=requested_run_tags(defs, request),
        status=dg.DagsterRunStatus.NOT_STARTED,
        remote_job_origin=origin,
    )
    return instance.run_coordinator.submit_run(SubmitRunContext(run, workspace=None))


def dequeued(instance: dg.DagsterInstance) -> list[str]:
    """The queued runs the daemon's run queue would launch now, by its own dequeue decision (tag limits,
    priorities); nothing is launched."""
    queue = QueuedRunCoordinatorDaemon(interval_seconds=1)
    return [run.run_id for run in queue._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)]


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
