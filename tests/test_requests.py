"""Who asked for a candidate: a signed request, or nobody known, in which case two approvers are needed.

One state dir: credit_scoring-v1 is launched as from the UI, without a signed request (an approver could
have pressed the button), and passes its gate. What an approver launching it can and cannot achieve, forged
request entries and refused requests are in the attack suite (tests/attacks/test_separation_of_duties.py).
"""

import json

import dagster as dg
import pytest
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG
from typer.testing import CliRunner

from governance.release.requests import requesters
from governance.release.services import Services
from governance.trust.demo import demo_principals
from jobs.requests import request_job_name
from programs.cli import app
from resources import governance_resources
from sensors.attempts import MAX_ATTEMPTS
from sensors.requests import CANDIDATE_REQUESTS
from tests.daemon_runs import cancel_before_start, create_requested_run, fail_by_run_monitoring, retries_spent, skip
from tests.helpers import SMALL_CONFIG, Lifecycle

pytestmark = pytest.mark.slow
MODEL, V1 = "credit_scoring", "credit_scoring-v1"


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    life = Lifecycle(tmp_path_factory.mktemp("requests") / "govern", SMALL_CONFIG)
    demo_principals(life.settings)
    key, result = life.candidate(tags={"governance/requested_by": "paul"})  # a tag is no request
    assert key == V1 and result.success
    return life


def govern(life, *args):
    base = ["--home", str(life.settings.home), "--config", str(life.settings.config_path)]
    return CliRunner(env={"GOVERN_POLICIES": str(life.settings.policies_dir)}).invoke(app, base + list(args))


def test_a_candidate_launched_without_a_signed_request_has_an_unknown_requester(life):
    services = Services(life.settings)
    asked = requesters(services, MODEL, V1)
    assert asked.verified == () and not asked.known and asked.unverified == ()
    status = json.loads(govern(life, "status", "--json").output)[0]
    (version,) = status["versions"]
    assert version["requested_by"].startswith("unknown") and version["gate"]["allowed"] is True
    assert status["awaiting_approval"][0]["may_approve"] == ["ravi", "rhea"]  # each of the two must be one
    card = life.materialized(MODEL, "model_card", V1)[0].asset_materialization.metadata["card"].value
    assert "| Requested by | unknown (no verified signed request" in card
    assert f"{V1}  requested by unknown" in govern(life, "status").output


def test_a_candidate_from_the_ui_needs_no_partition_name_and_a_typo_creates_nothing(life):
    job = life.defs.resolve_job_def(request_job_name(MODEL))
    partitions = f"{MODEL}_versions"
    before = life.instance.get_dynamic_partitions(partitions)
    typo = {"ops": {f"{MODEL}__check_candidate_request": {"config": {"version": "credit_scoring-v6"}}}}
    refused = job.execute_in_process(instance=life.instance, run_config=typo, raise_on_error=False)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure)
    assert "'credit_scoring-v6' is not the next credit_scoring version: the next candidate is 'credit_scoring-v2'" in (
        failure.step_failure_data.user_failure_data.description
    )
    assert requests_tick(life).skip_reason
    assert job.execute_in_process(instance=life.instance).success  # no name typed
    result = requests_tick(life)
    (run,) = result.run_requests
    assert run.job_name == f"{MODEL}_candidate" and run.partition_key == "credit_scoring-v2"
    assert run.tags["governance/requested_by"].startswith("unknown")
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["credit_scoring-v2"]]
    assert life.instance.get_dynamic_partitions(partitions) == before  # the evaluation wrote nothing
    later = requests_tick(life, result.cursor)  # no run was created for it yet: the same run, which the daemon's
    assert later.run_requests == result.run_requests  # run-key check launches once: one candidate per request


def test_after_the_upgrade_to_one_sensor_no_request_the_model_s_own_sensor_answered_is_answered_again(life):
    """A deployment whose models each had their own `<model>_candidate_requests` sensor: the fleet's sensor has no
    position for the model yet, so it reads every request run, as the model's own sensor did on its first tick. A
    request the old sensor launched a candidate for is passed over (Dagster's own run-key check is scoped to a
    sensor's name and would not see that run)."""
    (request,) = requests_tick(life).run_requests  # the request of the test above, not answered yet
    job = life.defs.resolve_job_def(request.job_name)
    tags = {**request.tags, RUN_KEY_TAG: request.run_key, SENSOR_NAME_TAG: f"{MODEL}_candidate_requests"}
    life.instance.add_dynamic_partitions(f"{MODEL}_versions", [request.partition_key])
    # as the old sensor's daemon launched it
    assert job.execute_in_process(instance=life.instance, partition_key=request.partition_key, tags=tags).success
    upgraded = requests_tick(life)
    assert not upgraded.run_requests and upgraded.skip_reason.skip_message == "no new candidate requests"
    assert json.loads(upgraded.cursor)["models"][MODEL] > 0  # past the request answered


def test_a_request_whose_candidate_runs_never_ran_is_launched_again_then_given_up(life):
    """The sensor used to move past a request as it launched its candidate: a candidate run that never started
    dropped the request for good (issue 21). Runs are created as the daemon creates them for the sensor's requests,
    and ended by Dagster's own code (a termination before it started, run monitoring)."""
    asked = life.defs.resolve_job_def(request_job_name(MODEL)).execute_in_process(instance=life.instance)
    cursor, runs = None, []
    for cancel in (False, True, False):
        result = requests_tick(life, cursor)
        cursor = result.cursor
        (request,) = result.run_requests
        assert request.tags["governance/request_run"] == asked.run_id
        run = create_requested_run(life.defs, life.instance, request, dg.DagsterRunStatus.NOT_STARTED)
        runs.append(run)
        held = requests_tick(life, cursor)
        assert not held.run_requests and f"candidate run {run.run_id} (NOT_STARTED) has not ended" in skip(held)
        if cancel:
            cancel_before_start(life.instance, run)
        else:  # never started: run monitoring fails it, and Dagster's retries are spent
            retries_spent(life.instance, fail_by_run_monitoring(life.instance, run))
    assert len({run.tags["dagster/partition"] for run in runs}) == 1  # the version number none of them used
    assert len({run.tags[RUN_KEY_TAG] for run in runs}) == MAX_ATTEMPTS  # a run key of its own per attempt
    given_up = requests_tick(life, cursor)
    assert not given_up.run_requests
    assert f"request run {asked.run_id} given up after {MAX_ATTEMPTS} candidate runs" in skip(given_up)
    assert f"launch {request_job_name(MODEL)} again" in skip(given_up)
    assert requests_tick(life, given_up.cursor).skip_reason.skip_message == "no new candidate requests"


def requests_tick(life, cursor: str | None = None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=life.instance, cursor=cursor, resources=governance_resources(life.settings)
    ) as context:
        return life.defs.resolve_sensor_def(CANDIDATE_REQUESTS)(context)
