"""The retraining sensor keeps a request open until a run answering it succeeds (issue 21, item 3).

A run left NOT_STARTED (a launcher that failed, a worker that never came up) used to make the sensor move its
cursor past the request for good. Runs are created here as the daemon creates them for a sensor's request, and
failed by Dagster's own run monitoring code, as the daemon's run monitoring does once the start timeout passes.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import dagster as dg
from dagster._core.test_utils import freeze_time
from typer.testing import CliRunner

from governance import events
from governance.monitoring.retraining import MONITORING, request_retraining
from governance.monitoring.windows import LIVE
from governance_assets.common import versions
from jobs import candidate_job_name
from jobs.monitoring import remediation_job_name, report_run_config
from jobs.retraining import retraining_job_name
from programs.cli import app
from programs.dagster_records import DagsterRecords
from programs.status import ASSETS, model_status
from resources import governance_resources
from sensors.attempts import MAX_ATTEMPTS, RETRY_GRACE_SECONDS
from tests.daemon_runs import (
    cancel_before_start,
    create_requested_run,
    dequeued,
    execute_requested,
    fail_by_run_monitoring,
    queued_run,
    retries_spent,
    skip,
)
from tests.helpers import register_version
from tests.monitoring.conftest import MODEL, Monitored


def create_run(monitored: Monitored, request: dg.RunRequest, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    return create_requested_run(monitored.defs, monitored.instance, request, status)


def test_a_run_stuck_before_it_starts_does_not_drop_the_request(monitored: Monitored):
    entry = request_retraining(monitored.services, MODEL, MONITORING, "test: drift")
    (request,) = monitored.tick("retraining_requests").run_requests
    assert request.tags["governance/ledger_entry"] == str(entry.seq)
    stuck = create_run(monitored, request, dg.DagsterRunStatus.NOT_STARTED)

    waiting = monitored.tick("retraining_requests")
    assert waiting.run_requests == [] and f"waits for candidate run {stuck.run_id} (NOT_STARTED)" in skip(waiting)
    assert MODEL not in (monitored.cursors.get("retraining_requests") or "{}")

    failed = fail_by_run_monitoring(monitored.instance, stuck)
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


def test_a_request_whose_runs_keep_failing_is_given_up_ledgered_once_and_shown(monitored: Monitored):
    entry = request_retraining(monitored.services, MODEL, MONITORING, "test: drift")
    runs = []
    for _ in range(MAX_ATTEMPTS):
        (request,) = monitored.tick("retraining_requests").run_requests
        run = create_run(monitored, request, dg.DagsterRunStatus.NOT_STARTED)
        monitored.instance.report_run_failed(monitored.instance.get_run_by_id(run.run_id), "test: worker lost")
        retries_spent(monitored.instance, run)
        runs.append(run.run_id)
    assert _retraining_status(monitored) == {
        "ledger_entry": entry.seq,
        "requested_at": entry.ts,
        "trigger": MONITORING,
        "runs": [f"run {run_id} FAILURE" for run_id in reversed(runs)],
        "state": "open",
    }

    given_up = monitored.tick("retraining_requests")
    (ledger_it,) = given_up.run_requests  # not a candidate: the run that ledgers the giving up
    assert ledger_it.job_name == f"{MODEL}_abandon" and ledger_it.partition_key is None
    assert MODEL not in json.loads(given_up.cursor)  # held until the ledger has it
    assert monitored.services.ledger.latest(events.RetrainingAbandoned, model=MODEL) is None  # the tick wrote nothing
    pending = create_run(monitored, ledger_it, dg.DagsterRunStatus.NOT_STARTED)
    waiting = monitored.tick("retraining_requests")
    assert waiting.run_requests == [] and f"run {pending.run_id} (NOT_STARTED) ledgers that" in skip(waiting)
    cancel_before_start(monitored.instance, pending)
    assert f"run {pending.run_id} ledgering that ended CANCELED: re-execute it" in skip(
        monitored.tick("retraining_requests")
    )

    assert execute_requested(monitored.defs, monitored.instance, ledger_it).success  # re-executed
    ledgered = monitored.services.ledger.latest(events.RetrainingAbandoned, model=MODEL)
    assert (ledgered.request, ledgered.request_entry) == (entry.seq, entry.entry_hash)
    assert ledgered.runs == tuple(reversed(runs)) and "did not answer it" in ledgered.reason
    settled = monitored.tick("retraining_requests")
    assert settled.run_requests == [] and f"given up after {MAX_ATTEMPTS} runs" in skip(settled)
    assert f"ledger entry {ledgered.seq}" in skip(settled)
    assert "no open retraining requests" in skip(monitored.tick("retraining_requests"))
    assert execute_requested(monitored.defs, monitored.instance, ledger_it).success  # once: a repeat appends nothing
    assert len(monitored.services.ledger.events(events.RetrainingAbandoned, model=MODEL)) == 1

    shown = _retraining_status(monitored)
    assert shown["state"] == "abandoned" and shown["abandoned"]["ledger_entry"] == ledgered.seq
    text = _govern(monitored, "status").output
    assert f"retraining requested by monitoring (ledger entry {entry.seq}): RETRAINING GIVEN UP" in text
    assert f"launch {MODEL}_retraining in the Dagster UI" in text
    assert "RETRAINING GIVEN UP" in _govern(monitored, "status", "--summary").output


def _retraining_status(monitored: Monitored) -> dict:
    with DagsterRecords(monitored.settings, [monitored.model.name], ASSETS) as dagster:
        return model_status(dagster, monitored.services, monitored.model)["retraining"]


def _govern(monitored: Monitored, *args: str):
    settings = monitored.settings
    base = ["--home", str(settings.home), "--config", str(settings.config_path)]
    return CliRunner(env={"GOVERN_POLICIES": str(settings.policies_dir)}).invoke(app, [*base, *args])


def test_remediation_runs_jump_the_queue_and_each_model_runs_one_of_each_kind_at_a_time(monitored: Monitored):
    remediation = monitored.defs.resolve_job_def(f"{MODEL}_remediation")
    candidate = monitored.defs.resolve_job_def(candidate_job_name(MODEL))
    assert int(remediation.tags["dagster/priority"]) > int(candidate.tags.get("dagster/priority", 0))
    assert remediation.tags["governance/queue"] != candidate.tags["governance/queue"]
    coordinator = monitored.instance.run_coordinator
    limits = coordinator.get_run_queue_config().tag_concurrency_limits
    assert {"key": "governance/queue", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


def test_a_remediation_queued_behind_a_full_run_queue_is_launched_first(monitored: Monitored):
    """More runs wait than the run queue launches at once (Dagster's max_concurrent_runs): retrainings of many
    models, each in its own queue, then one remediation. The daemon's dequeue takes the remediation first."""
    instance = monitored.instance
    limit = instance.get_concurrency_config().run_queue_config.max_concurrent_runs
    assert 0 < limit < 50, limit  # a full queue is possible: otherwise priority would never matter
    waiting = [
        queued_run(
            monitored.defs,
            instance,
            dg.RunRequest(
                job_name=retraining_job_name(MODEL), run_key=f"r{i}", tags={"governance/queue": f"model_{i}"}
            ),
        )
        for i in range(limit + 2)
    ]
    remediation = queued_run(
        monitored.defs,
        instance,
        dg.RunRequest(
            job_name=remediation_job_name(MODEL),
            run_key="harm",
            run_config=report_run_config(monitored.model, 1, 100, LIVE, "monitoring_data_drift"),
        ),
    )
    launched = dequeued(instance)
    assert len(launched) == limit and launched[0] == remediation.run_id, launched
    assert waiting[-1].run_id not in launched  # the last retrainings wait for a free slot


def test_a_scheduled_retraining_while_a_candidate_runs_waits_in_dagster_s_run_queue(monitored: Monitored):
    """One candidate per model at a time is Dagster's run queue, not the schedule or the sensor polling runs: a
    tick while a candidate runs still requests, and its candidate waits in the queue until the first ends."""
    instance = monitored.instance
    instance.add_dynamic_partitions(versions(monitored.model).name, [f"{MODEL}-v3"])
    first = queued_run(
        monitored.defs,
        instance,
        dg.RunRequest(job_name=candidate_job_name(MODEL), partition_key=f"{MODEL}-v3", run_key="first"),
    )
    assert dequeued(instance) == [first.run_id]
    instance.report_dagster_event(  # what the daemon records as it launches a dequeued run
        dg.DagsterEvent(dg.DagsterEventType.RUN_STARTING.value, job_name=first.job_name), run_id=first.run_id
    )

    schedule = monitored.defs.resolve_schedule_def(f"{MODEL}_retraining_schedule")
    with dg.build_schedule_context(
        instance=instance,
        resources=governance_resources(monitored.settings),
        scheduled_execution_time=datetime(2026, 11, 23, 3, tzinfo=UTC),
    ) as context:
        tick = schedule(context)
    assert isinstance(tick, dg.RunRequest), tick  # queued behind the candidate, not skipped
    assert monitored.run(tick, job="retraining").success
    waiting = monitored.tick("retraining_requests")
    assert waiting.run_requests == [] and f"{MODEL}-v3 already has a candidate run" in skip(waiting)

    register_version(monitored.settings)  # the first run's trained_model registered v3; its evaluation goes on
    (request,) = monitored.tick("retraining_requests").run_requests
    assert request.partition_key == f"{MODEL}-v4" and request.tags["governance/trigger"] == "schedule"
    second = queued_run(monitored.defs, instance, request)
    assert dequeued(instance) == []  # the first is still running: Dagster holds the second
    instance.handle_run_event(
        first.run_id, dg.DagsterEvent(dg.DagsterEventType.RUN_SUCCESS.value, job_name=first.job_name)
    )
    assert dequeued(instance) == [second.run_id]


def test_a_retraining_cursor_it_did_not_write_is_refused_with_a_message(monitored: Monitored):
    monitored.cursors["retraining_requests"] = "57"
    result = monitored.tick("retraining_requests")
    assert result.run_requests == [] and "is not a retraining cursor" in skip(result)
