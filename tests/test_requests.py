"""Who asked for a candidate: a signed request, or nobody known, in which case two approvers are needed.

One state dir: credit_scoring-v1 is launched as from the UI, without a signed request (an approver could
have pressed the button), and passes its gate. What an approver launching it can and cannot achieve, forged
request entries and refused requests are in the attack suite (tests/attacks/test_separation_of_duties.py).
"""

import json

import dagster as dg
import pytest
from typer.testing import CliRunner

from governance.release.requests import requesters
from governance.release.services import Services
from governance.trust.demo import demo_principals
from jobs.requests import request_job_name, request_sensor
from programs.cli import app
from resources import governance_resources
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
    sensor = request_sensor(life.config.model(MODEL), f"{MODEL}_candidate")
    resources = governance_resources(life.settings)
    with dg.build_sensor_context(instance=life.instance, resources=resources) as context:
        assert sensor(context).skip_reason
    assert job.execute_in_process(instance=life.instance).success  # no name typed
    with dg.build_sensor_context(instance=life.instance, resources=resources) as context:
        result = sensor(context)
    (run,) = result.run_requests
    assert run.partition_key == "credit_scoring-v2" and run.tags["governance/requested_by"].startswith("unknown")
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["credit_scoring-v2"]]
    assert life.instance.get_dynamic_partitions(partitions) == before  # the evaluation wrote nothing
    with dg.build_sensor_context(instance=life.instance, cursor=result.cursor, resources=resources) as context:
        later = sensor(context)
    assert later.skip_reason and not later.run_requests  # one candidate per request
