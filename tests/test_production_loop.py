"""The production loop end to end, through Dagster and the running scoring API.

Two versions pass their gate in the real graph. An approver signs through the
CLI; the approval sensor's run deploys; decisions come back from the new
champion with reasons; `govern disable` turns every answer into "refer" within a
second; `govern enable` restores decisions; `govern rollback` returns to the
previous version, which serving follows without a restart. Every decision the
API answered is in the decision log.
"""

import time

import dagster as dg
import httpx
import pytest
from dagster._core.storage.tags import RUN_KEY_TAG
from typer.testing import CliRunner

from governance import events
from governance.decisions import DecisionLog
from governance.serving.app import create_app
from governance.trust.demo import demo_principals
from programs.cli import app
from resources import governance_resources
from sensors.approvals import APPROVALS
from tests.helpers import REPO, SMALL_CONFIG, Lifecycle, RunningAPI, wait_until

pytestmark = pytest.mark.slow
MODEL = "credit_scoring"


def govern(life, *args):
    runner = CliRunner(env={"GOVERN_POLICIES": str(REPO / "policies")})
    result = runner.invoke(app, ["--home", str(life.settings.home), "--config", str(SMALL_CONFIG), *map(str, args)])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def sensor_tick(life, cursor):
    """What the daemon does on a tick: evaluate the sensor and launch the runs it asks for."""
    resources = governance_resources(life.settings)
    with dg.build_sensor_context(instance=life.instance, cursor=cursor, resources=resources) as context:
        result = life.defs.resolve_sensor_def(APPROVALS)(context)
    for request in result.run_requests or []:
        run = life.defs.resolve_job_def(request.job_name).execute_in_process(
            instance=life.instance,
            partition_key=request.partition_key,
            tags={**request.tags, RUN_KEY_TAG: request.run_key},
        )
        assert run.success
    return result.cursor or cursor


def ask(client, life, rows):
    columns = life.config.model(MODEL).feature_columns  # this config does not collect protected attributes
    return [
        client.post(f"/models/{MODEL}/decisions", json=row).raise_for_status().json()
        for row in rows[columns].to_dict(orient="records")
    ]


def test_approve_deploy_decide_disable_enable_rollback(tmp_path):
    from governance.data.generator import generate_applications

    life = Lifecycle(tmp_path / "govern", SMALL_CONFIG)
    demo_principals(life.settings)
    v1, first = life.candidate(requested_by="dana")
    assert first.success
    govern(life, "approve", MODEL, v1, "--as", "ravi", "--comment", "first release")
    cursor = sensor_tick(life, None)
    assert life.registry.champion(MODEL) == 1

    applications = generate_applications(60, seed=99)
    with (
        RunningAPI(create_app(life.settings, life.config, poll_seconds=0.2)) as api,
        httpx.Client(base_url=api.url, timeout=10) as client,
    ):
        first_answers = ask(client, life, applications.head(20))
        assert {a["version"] for a in first_answers} == {1}

        v2, second = life.candidate(requested_by="dana")
        assert second.success
        govern(life, "approve", MODEL, v2, "--as", "rhea")
        sensor_tick(life, cursor)
        assert life.registry.champion(MODEL) == 2
        wait_until(lambda: ask(client, life, applications.head(1))[0]["version"] == 2, "serving v2")
        answers = ask(client, life, applications)
        assert {a["version"] for a in answers} == {2}
        declined = [a for a in answers if a["outcome"] == "decline"]
        assert declined and all(1 <= len(a["reasons"]) <= 4 for a in declined)
        protected = set(life.config.model(MODEL).protected_columns)
        assert not any(r["feature"] in protected for a in answers for r in a["reasons"])

        started = time.monotonic()
        govern(life, "disable", MODEL, "--as", "bea", "--reason", "complaints under review")
        seconds = wait_until(lambda: ask(client, life, applications.head(1))[0]["outcome"] == "refer", "refer")
        assert time.monotonic() - started < 1.0 + 1.0  # the CLI's own work plus serving's reaction
        assert seconds < 1.0
        referred = ask(client, life, applications)
        assert all(a["outcome"] == "refer" and a["safe_state"] for a in referred)

        govern(life, "enable", MODEL, "--as", "bea", "--reason", "review closed")
        wait_until(lambda: not ask(client, life, applications.head(1))[0]["safe_state"], "decisions again")

        output = govern(life, "rollback", MODEL, "--as", "paul", "--reason", "v2 under investigation")
        assert "rolled back to credit_scoring-v1" in output
        wait_until(lambda: ask(client, life, applications.head(1))[0]["version"] == 1, "serving v1 again")
        assert {a["version"] for a in ask(client, life, applications.head(10))} == {1}

    # A fresh daemon's approvals sensor (no cursor) must not bring v2 back: both approvals were released already,
    # and an approval is spent by its deployment, so even a forced re-run of v2's release deploys nothing.
    with dg.build_sensor_context(instance=life.instance, resources=governance_resources(life.settings)) as context:
        fresh = life.defs.resolve_sensor_def(APPROVALS)(context)
    assert not fresh.run_requests
    rerun = life.defs.resolve_job_def("credit_scoring_release").execute_in_process(
        instance=life.instance, partition_key=v2, raise_on_error=False
    )
    assert not rerun.success and life.registry.champion(MODEL) == 1
    refused = life.services.ledger.latest(events.ReleaseRefused, model=MODEL, version=v2)
    assert "was spent on the deployment of this pack completed at" in " ".join(refused.reasons or ()), refused

    answered = 20 + 60 + 60 + 10  # the batches above, plus the single polls counted below
    log = DecisionLog.for_settings(life.settings)
    assert log.count(MODEL) >= answered
    for answer in first_answers + answers + referred:
        assert log.get(answer["decision_id"]).outcome == answer["outcome"]
    assert life.services.ledger.verify().ok
    recorded = {type(e) for e in life.services.ledger.events(events.Event, model=MODEL)}
    assert {
        events.ApprovalGranted,
        events.DeploymentCompleted,
        events.KillSwitchOn,
        events.KillSwitchOff,
        events.RollbackCompleted,
    } <= recorded
