"""The retraining sensor keeps a request open until a run answering it succeeds (issue 21, item 3).

A run left NOT_STARTED (a launcher that failed, a worker that never came up) used to make the sensor move its
cursor past the request for good. Runs are created here as the daemon creates them for a sensor's request, and
failed by Dagster's own run monitoring code, as the daemon's run monitoring does once the start timeout passes.
"""

from __future__ import annotations

import logging
import time

import dagster as dg
from dagster._core.test_utils import freeze_time
from dagster._daemon.monitoring.run_monitoring import monitor_starting_run

from governance.monitoring.retraining import MONITORING, request_retraining
from jobs import candidate_job_name
from sensors.monitoring import MAX_ATTEMPTS, RETRY_GRACE_SECONDS
from tests.monitoring.conftest import MODEL, Monitored


def create_run(monitored: Monitored, request: dg.RunRequest, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """The run the daemon creates for a sensor's request (before the queue launches it)."""
    job = monitored.defs.resolve_job_def(candidate_job_name(MODEL))
    tags = {**job.tags, **request.tags, "dagster/partition": request.partition_key}
    return monitored.instance.create_run_for_job(job, tags=tags, status=status)


def fail_by_run_monitoring(monitored: Monitored, run: dg.DagsterRun) -> dg.DagsterRun:
    """Dagster's run monitoring, after its start timeout: the run stuck before starting is failed."""
    record = monitored.instance.get_run_record_by_id(run.run_id)
    later = time.time() + monitored.instance.run_monitoring_start_timeout_seconds + 1
    with freeze_time(later):
        monitor_starting_run(monitored.instance, record, logging.getLogger("run_monitoring"))
    failed = monitored.instance.get_run_by_id(run.run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    return failed


def skip(result) -> str:
    return result.skip_reason.skip_message if result.skip_reason else ""


def test_a_run_stuck_before_it_starts_does_not_drop_the_request(monitored: Monitored):
    entry = request_retraining(monitored.services, MODEL, MONITORING, "test: drift")
    (request,) = monitored.tick("retraining_requests").run_requests
    assert request.tags["governance/ledger_entry"] == str(entry.seq)
    stuck = create_run(monitored, request, dg.DagsterRunStatus.NOT_STARTED)

    waiting = monitored.tick("retraining_requests")
    assert waiting.run_requests == [] and f"waits for candidate run {stuck.run_id} (NOT_STARTED)" in skip(waiting)
    assert MODEL not in (monitored.cursors.get("retraining_requests") or "{}")

    failed = fail_by_run_monitoring(monitored, stuck)
    assert failed.tags["dagster/will_retry"] == "true"  # run retries are on: the daemon's retry comes ...
    assert "waits for candidate run" in skip(monitored.tick("retraining_requests"))
    retry_overdue = time.time() + monitored.instance.run_monitoring_start_timeout_seconds + RETRY_GRACE_SECONDS + 2
    with freeze_time(retry_overdue):  # ... and if it never does, the sensor launches again
        relaunched = monitored.tick("retraining_requests")
        assert relaunched.run_requests, skip(relaunched)
        (again,) = relaunched.run_requests
    assert again.tags["governance/ledger_entry"] == str(entry.seq) and again.run_key != request.run_key
    assert again.partition_key == request.partition_key  # the version number the stuck run never used

    done = create_run(monitored, again, dg.DagsterRunStatus.NOT_STARTED)
    monitored.instance.handle_run_event(
        done.run_id,
        dg.DagsterEvent(dg.DagsterEventType.RUN_SUCCESS.value, job_name=done.job_name, message="test: succeeded"),
    )
    answered = monitored.tick("retraining_requests")
    assert answered.run_requests == [] and "answered by a successful candidate run" in skip(answered)
    assert monitored.tick("retraining_requests").run_requests == []
    assert "no open retraining requests" in skip(monitored.tick("retraining_requests"))


def test_a_request_whose_runs_keep_failing_is_given_up_after_a_bounded_number_of_attempts(monitored: Monitored):
    request_retraining(monitored.services, MODEL, MONITORING, "test: drift")
    for _ in range(MAX_ATTEMPTS):
        (request,) = monitored.tick("retraining_requests").run_requests
        run = create_run(monitored, request, dg.DagsterRunStatus.NOT_STARTED)
        monitored.instance.report_run_failed(monitored.instance.get_run_by_id(run.run_id), "test: worker lost")
        # what the daemon's retry loop records once a run's retries are spent
        monitored.instance.add_run_tags(run.run_id, {"dagster/will_retry": "false"})
    given_up = monitored.tick("retraining_requests")
    assert given_up.run_requests == [] and f"given up after {MAX_ATTEMPTS} failed candidate runs" in skip(given_up)
    assert "no open retraining requests" in skip(monitored.tick("retraining_requests"))


def test_remediation_runs_jump_the_queue_and_each_model_runs_one_of_each_kind_at_a_time(monitored: Monitored):
    remediation = monitored.defs.resolve_job_def(f"{MODEL}_remediation")
    candidate = monitored.defs.resolve_job_def(candidate_job_name(MODEL))
    assert int(remediation.tags["dagster/priority"]) > int(candidate.tags.get("dagster/priority", 0))
    assert remediation.tags["governance/queue"] != candidate.tags["governance/queue"]
    coordinator = monitored.instance.run_coordinator
    limits = coordinator.get_run_queue_config().tag_concurrency_limits
    assert {"key": "governance/queue", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


def test_a_retraining_cursor_it_did_not_write_is_refused_with_a_message(monitored: Monitored):
    monitored.cursors["retraining_requests"] = "57"
    result = monitored.tick("retraining_requests")
    assert result.run_requests == [] and "is not a retraining cursor" in skip(result)
