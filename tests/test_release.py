"""From a passing gate to production through Dagster: approval, rejection, the sensor, and what makes a pack
approvable by nobody.

One state dir for the module: version 1 passes its gate and waits for approval. An expired approval, a rejection
and a stale review deploy nothing; finally a proper approval, released by the approvals sensor's run, deploys it.
The attacks that must deploy nothing (no approval, a reported materialization, forged, replayed or refused
statements, a pack or artifact changed after approval) are in the attack suite, tests/attacks.
"""

import json
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG
from typer.testing import CliRunner

from governance import events
from governance.release.approvals import ApprovalRefused, approval_lapsed, decide, latest_request, valid_approval
from governance.release.services import Services
from governance.timestamps import utc_now
from governance.trust.demo import demo_principals
from governance.trust.keys import load_private_key
from programs.cli import app
from resources import governance_resources
from sensors.approvals import APPROVALS
from sensors.attempts import MAX_ATTEMPTS
from tests.daemon_runs import (
    cancel_before_start,
    create_requested_run,
    execute_requested,
    fail_by_run_monitoring,
    retries_spent,
)
from tests.helpers import SMALL_CONFIG, Lifecycle

pytestmark = pytest.mark.slow
MODEL, V1 = "credit_scoring", "credit_scoring-v1"


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    life = Lifecycle(tmp_path_factory.mktemp("release") / "govern", SMALL_CONFIG)
    demo_principals(life.settings)
    key, result = life.candidate(requested_by="dana")
    assert key == V1 and result.success
    return life


def govern(life, *args):
    base = ["--home", str(life.settings.home), "--config", str(life.settings.config_path)]
    return CliRunner(env={"GOVERN_POLICIES": str(life.settings.policies_dir)}).invoke(
        app, base + [str(a) for a in args]
    )


def release(life, selection=None):
    """Run what the approval sensor launches: approved_release then production_deployment."""
    job = life.defs.resolve_job_def("credit_scoring_release")
    return job.execute_in_process(
        instance=life.instance, partition_key=V1, raise_on_error=False, asset_selection=selection
    )


def services(life) -> Services:
    return Services(life.settings)


def last_refusal(life) -> str:
    refused = services(life).ledger.latest(events.ReleaseRefused, model=MODEL)
    return " ".join(refused.reasons) if refused else ""


def evidence_dir(life) -> Path:
    """Where the version's evidence packs are sealed (only a pack there can be requested for approval)."""
    return life.settings.model_dir(MODEL, V1) / "evidence"


def key_of(life, name):
    return load_private_key(life.settings.keys_dir / f"{name}.key")


def assert_nothing_deployed(life, reason: str):
    assert services(life).registry.champion(MODEL) is None
    assert not services(life).control.deployments(MODEL)
    assert reason in last_refusal(life), last_refusal(life)


def test_gate_passed_and_the_request_is_pending(life):
    gate = services(life).ledger.latest(events.GateDecided, model=MODEL)
    assert gate.allowed is True and gate.decision["allowed"] is True
    assert gate.policy == services(life).policies.digest
    request = services(life).ledger.latest(events.ApprovalRequested, model=MODEL)
    pack = life.settings.evidence_pack_dir(MODEL, V1, request.evidence_pack)
    assert pack == Path(latest_request(services(life), MODEL, V1).pack_path)
    assert {"model_card.html", "fairness.json", "gate_decision.json", "validation.json"} <= {
        p.name for p in pack.iterdir()
    }
    assert {p.name for p in (pack / "plots").iterdir()} == {
        "roc.svg",
        "calibration.svg",
        "selection_rates.svg",
        "shap_summary.svg",
    }
    status = json.loads(govern(life, "status", "--json").output)
    assert status[0]["versions"][0]["assets"]["approval_request"]["state"] == "materialized"
    assert status[0]["versions"][0]["assets"]["release_gate"]["allowed"] is True
    # Cedar decides who may approve: model risk approvers, never dana who trained and requested it.
    assert status[0]["awaiting_approval"] == [
        {"version": V1, "evidence_pack": request.evidence_pack, "may_approve": ["ravi", "rhea"]}
    ]
    text = govern(life, "status").output
    assert (f"credit_scoring-v1 awaits approval of evidence pack {request.evidence_pack} by one of: ravi, rhea") in text
    assert "(risk tier high; no champion: serving refers every application to manual review)" in text


def test_an_expired_approval_does_not_count(life):
    svc = services(life)
    decide(svc, MODEL, V1, "approve", "rhea", key_of(life, "rhea"), comment="expiry check")
    later = utc_now() + timedelta(days=8)  # beyond the policy's 168-hour approval validity
    with pytest.raises(ApprovalRefused, match="An approval is valid for 7 days"):
        valid_approval(svc, MODEL, V1, "test", now=later)
    assert valid_approval(svc, MODEL, V1, "test")[0].principal == "rhea"
    _withdraw(svc, "rhea")


def test_a_rejected_version_approved_later_needs_a_new_request(life):
    assert govern(life, "reject", MODEL, "1", "--as", "ravi", "--comment", "calibration drift").exit_code == 0
    result = govern(life, "approve", MODEL, "1", "--as", "rhea")
    assert "rejected this evidence pack" in str(result.exception)
    assert not release(life).success
    assert_nothing_deployed(life, "rejected this evidence pack")


def test_an_approval_names_the_pack_its_approver_reviewed(life):
    job = life.defs.resolve_job_def("credit_scoring_candidate")  # a new request: the last pack was rejected
    assert job.execute_in_process(
        instance=life.instance, partition_key=V1, tags={"governance/requested_by": "dana"}
    ).success
    request = latest_request(services(life), MODEL, V1)
    pending = request.pack_digest
    card = Path(request.pack_path) / "model_card.md"
    original = card.read_bytes()
    card.write_bytes(original + b"\n(edited)\n")
    damaged = json.loads(govern(life, "status", "--json").output)[0]["awaiting_approval"][0]
    assert damaged["may_approve"] == [] and "model_card.md" in damaged["cannot_be_approved"]
    assert f"{V1} awaits approval of evidence pack {pending} cannot be approved: " in govern(life, "status").output
    card.write_bytes(original)
    stale = govern(life, "approve", MODEL, "1", "--as", "rhea", "--evidence", "0" * 32)
    assert stale.exit_code != 0 and str(stale.exception) == (
        f"{V1}: the pending evidence pack is {pending}, not the '{'0' * 32}' you reviewed: review the pending pack"
    )
    short = govern(life, "approve", MODEL, "1", "--as", "rhea", "--evidence", pending[:12])
    assert str(short.exception) == f"{V1}: give at least 32 characters of the evidence pack digest you reviewed, not 12"
    approved = govern(life, "approve", MODEL, "1", "--as", "rhea", "--evidence", pending[:32].upper())
    assert approved.exit_code == 0
    # No daemon runs here: the command says the sensor releases only with one, and what to run without it.
    assert "the approval sensor will now" not in approved.output
    assert "released and deployed by the approval sensor if the Dagster daemon runs" in approved.output
    assert (
        f"DAGSTER_HOME={life.settings.dagster_home} dagster asset materialize -m definitions "
        f"--select '{MODEL}/approved_release,{MODEL}/production_deployment' --partition {V1}"
    ) in approved.output
    _withdraw(services(life), "rhea")


def test_a_rejection_cedar_refused_vetoes_nothing(life):
    refused = govern(life, "reject", MODEL, "1", "--as", "audrey", "--comment", "not mine to reject")
    assert refused.exit_code != 0 and "reject by audrey refused" in str(refused.exception)
    assert govern(life, "approve", MODEL, "1", "--as", "rhea").exit_code == 0
    assert valid_approval(services(life), MODEL, V1, "test")[0].principal == "rhea"
    _withdraw(services(life), "rhea")


def approvals_tick(life, cursor: str | None = None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=life.instance, cursor=cursor, resources=governance_resources(life.settings)
    ) as context:
        return life.defs.resolve_sensor_def(APPROVALS)(context)


def _releasing(result: dg.SensorResult, grant: events.ApprovalGranted) -> list[dg.RunRequest]:
    return [r for r in result.run_requests if r.tags.get("governance/approval") == grant.statement[:32]]


def test_a_release_whose_runs_never_ran_is_launched_again_then_given_up_ledgered_and_shown(life):
    """The approvals sensor used to move past an approval as it launched its release run: a run that never started
    (terminated before it started, a launcher that failed) dropped the release for good (issue 21). Runs are created
    as the daemon creates them for the sensor's requests, and ended by Dagster's own code (a termination before it
    started, run monitoring)."""
    assert govern(life, "approve", MODEL, "1", "--as", "ravi", "--comment", "first review").exit_code == 0
    grant = services(life).ledger.latest(events.ApprovalGranted, model=MODEL)
    cursor, runs = None, []
    for cancel in (True, False, True):
        result = approvals_tick(life, cursor)
        cursor = result.cursor
        (request,) = _releasing(result, grant)
        assert json.loads(cursor)["models"][MODEL]["ledger_seq"] < grant.seq  # held until a run answers it
        run = create_requested_run(life.defs, life.instance, request, dg.DagsterRunStatus.NOT_STARTED)
        runs.append(run)
        assert not _releasing(approvals_tick(life, cursor), grant)  # nothing more while its run is in flight
        if cancel:
            cancel_before_start(life.instance, run)
        else:  # never started: run monitoring fails it, and Dagster's retries are spent
            retries_spent(life.instance, fail_by_run_monitoring(life.instance, run))
    assert len({run.tags[RUN_KEY_TAG] for run in runs}) == MAX_ATTEMPTS  # a run key of its own per attempt
    given_up = approvals_tick(life, cursor)
    assert not _releasing(given_up, grant) and services(life).registry.champion(MODEL) is None
    (ledger_it,) = [r for r in given_up.run_requests if r.job_name == f"{MODEL}_abandon"]

    assert execute_requested(life.defs, life.instance, ledger_it).success
    ledgered = services(life).ledger.latest(events.ReleaseAbandoned, model=MODEL)
    assert (ledgered.request, ledgered.approval, ledgered.version) == (grant.seq, grant.statement, V1)
    assert ledgered.runs == tuple(run.run_id for run in reversed(runs)) and "START_TIMEOUT" in ledgered.reason
    settled = approvals_tick(life, cursor)
    assert not _releasing(settled, grant) and not [r for r in settled.run_requests if r.job_name == ledger_it.job_name]

    (waiting,) = json.loads(govern(life, "status", "--json").output)[0]["awaiting_release"]
    assert waiting["approved_by"] == "ravi" and waiting["release_abandoned"]["ledger_entry"] == ledgered.seq
    text = govern(life, "status").output
    assert f"{V1} approved by ravi; RELEASE GIVEN UP (ledger entry {ledgered.seq}" in text
    assert f"launch {MODEL}_release for {V1} in the Dagster UI, or have it approved again" in text
    assert "1 RELEASE(S) GIVEN UP" in govern(life, "status", "--summary").output


def test_the_approvals_sensor_launches_the_release_that_deploys(life):
    approved = govern(life, "approve", MODEL, "1", "--as", "ravi", "--comment", "reviewed again")
    assert approved.exit_code == 0, approved.output
    result = approvals_tick(life)
    requests = result.run_requests
    assert requests and {r.partition_key for r in requests} == {V1}
    assert {r.job_name for r in requests} == {f"{MODEL}_release"}
    assert len({r.run_key for r in requests}) == len(requests)
    follow_up = approvals_tick(life, result.cursor)  # no run was created for them yet: the same runs, which the
    assert follow_up.run_requests == requests  # daemon's run-key check launches once
    waiting = govern(life, "status")
    assert f"{V1} approved by ravi; awaits release by the approval sensor" in waiting.output, waiting.output

    assert release(life).success
    assert "awaits release" not in govern(life, "status").output
    svc = services(life)
    assert svc.registry.champion(MODEL) == 1
    done = svc.control.deployments(MODEL, "completed")[-1]
    assert done.version == 1 and done.artifact_sha256 == svc.registry.version(MODEL, 1).artifact_sha256
    steps = [type(e) for e in svc.ledger.events(events.Event, model=MODEL)]
    assert steps[-3:] == [events.ReleaseApproved, events.DeploymentStarted, events.DeploymentCompleted]
    metadata = life.materialized(MODEL, "approved_release", V1)[0].asset_materialization.metadata  # newest first
    assert metadata["approver"].value == "ravi" and metadata["role"].value == "model_risk_approver"
    assert svc.ledger.verify().ok

    size = svc.ledger.size()
    again = govern(life, "approve", MODEL, "v1", "--as", "ravi")
    assert again.exit_code != 0 and f"{V1} is already the champion: there is nothing to approve" in str(again.exception)
    assert svc.ledger.size() == size


def test_after_the_upgrade_to_one_sensor_no_approval_the_model_s_own_sensor_launched_is_launched_again(life):
    """A deployment whose models each had their own `<model>_approvals` sensor: the fleet's sensor has no position
    for the model yet, so it reads every grant since the start of the ledger, as the model's own sensor did on its
    first tick. A grant whose release run the old sensor launched is passed over, deployed or not (Dagster's own
    run-key check is scoped to a sensor's name and would not see that run)."""
    never_launched = approvals_tick(life).run_requests  # rhea's earlier grants: withdrawn, never deployed
    assert never_launched and all(r.partition_key == V1 for r in never_launched)
    for request in never_launched:  # as the old sensor's daemon launched them: refused, v1 is the champion
        tags = {**request.tags, RUN_KEY_TAG: request.run_key, SENSOR_NAME_TAG: f"{MODEL}_approvals"}
        run = life.defs.resolve_job_def(request.job_name).execute_in_process(
            instance=life.instance, partition_key=request.partition_key, tags=tags, raise_on_error=False
        )
        assert not run.success
    upgraded = approvals_tick(life)
    assert not upgraded.run_requests
    assert upgraded.skip_reason.skip_message.count("was already launched by run") == len(never_launched)
    assert services(life).registry.champion(MODEL) == 1


def _withdraw(svc, principal: str) -> None:
    """Remove a principal's approvals so later steps start without one (test bookkeeping only)."""
    from governance.trust import store as store_module

    table = store_module._statements
    with svc.statements.engine.begin() as conn:
        conn.execute(table.delete().where(table.c.principal == principal, table.c.action == "approve"))


def test_no_private_key_material_anywhere_in_the_state(life):
    """Ledger, statement store, decision log, MLflow, Dagster's event log and metadata, reports, evidence packs."""
    import base64

    from cryptography.hazmat.primitives import serialization

    secrets = []
    for path in life.settings.keys_dir.glob("*.key"):
        key = load_private_key(path)
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        pem_body = "".join(path.read_text().splitlines()[1:-1]).encode()
        secrets += [raw, raw.hex().encode(), base64.b64encode(raw), pem_body]
    scanned = 0
    for file in life.settings.home.rglob("*"):
        if file.is_file() and life.settings.keys_dir not in file.parents:
            content = file.read_bytes()
            scanned += 1
            leaked = [s for s in secrets if s in content]
            assert not leaked, f"private key material in {file}"
    assert scanned > 50


def test_a_pack_that_seals_no_gate_decision_is_approvable_by_nobody(life, tmp_path):
    """Who may approve is read from the gate decision sealed in the pack: a pack without one is refused."""
    from governance.release.approvals import request_approval
    from governance.release.evidence_pack import seal

    card = tmp_path / "model_card.md"
    card.write_text("a card and nothing else")
    facts = {"artifact_sha256": "0" * 64, "policy_digest": "0" * 64}
    elsewhere = seal(tmp_path / "packs", MODEL, V1, {"model_card.md": card}, facts)
    with pytest.raises(ApprovalRefused, match="requested for approval only where it is sealed"):
        request_approval(services(life), elsewhere, ())
    pack = seal(evidence_dir(life), MODEL, V1, {"model_card.md": card}, facts)
    assert pack.digest == elsewhere.digest
    request_approval(services(life), pack, ())
    with pytest.raises(ApprovalRefused, match="the pack seals no gate decision, so nothing says who may approve it"):
        valid_approval(services(life), MODEL, V1, "test")
    assert "seals no gate decision" in last_refusal(life)


def test_a_pack_judged_under_a_lower_risk_tier_than_the_model_now_has_is_approvable_by_nobody(life, tmp_path):
    """Raising a model's risk tier after its gate ran leaves the pending pack judged by the lower tier's thresholds
    and approvers: it must be gated again, not approved."""
    from governance.release.approvals import request_approval
    from governance.release.evidence_pack import seal

    first = services(life).ledger.events(events.ApprovalRequested, model=MODEL)[0]
    decision = json.loads(
        (life.settings.evidence_pack_dir(MODEL, V1, first.evidence_pack) / "gate_decision.json").read_bytes()
    )
    assert decision["risk_tier"] == "high"
    (tmp_path / "gate_decision.json").write_text(json.dumps({**decision, "risk_tier": "medium"}))
    pack = seal(
        evidence_dir(life),
        MODEL,
        V1,
        {"gate_decision.json": tmp_path / "gate_decision.json"},
        {"artifact_sha256": "0" * 64, "policy_digest": "0" * 64},
    )
    request_approval(services(life), pack, ())
    reason = "credit_scoring's risk tier is now high, but the gate sealed for credit_scoring-v1 judged it as medium"
    refused = govern(life, "reject", MODEL, "1", "--as", "ravi")  # v1 is the champion by now: nothing to approve
    assert refused.exit_code != 0 and reason in str(refused.exception)
    ledgered = services(life).ledger.latest(events.ApprovalDecisionRefused, model=MODEL)
    assert ledgered.actor == "ravi" and ledgered.statement_action == "reject" and reason in ledgered.reason
    with pytest.raises(ApprovalRefused, match=reason):
        valid_approval(services(life), MODEL, V1, "test")
    assert (
        reason in json.loads(govern(life, "status", "--json").output)[0]["awaiting_approval"][0]["cannot_be_approved"]
    )
    assert approval_lapsed(services(life), MODEL, V1, pack.digest) == reason  # what a rollback to it is refused for
    (pack.path / "manifest.json").write_text("not json")
    assert "the approved evidence pack cannot be read" in approval_lapsed(services(life), MODEL, V1, pack.digest)

    (tmp_path / "gate_decision.json").write_text(json.dumps({**decision, "risk_tier": "extreme"}))
    unknown = seal(
        evidence_dir(life),
        MODEL,
        V1,
        {"gate_decision.json": tmp_path / "gate_decision.json"},
        {"artifact_sha256": "0" * 64, "policy_digest": "0" * 64},
    )
    request_approval(services(life), unknown, ())
    with pytest.raises(ApprovalRefused, match="names no known risk tier \\('extreme'\\)"):
        valid_approval(services(life), MODEL, V1, "test")
    assert "names no known risk tier" in last_refusal(life)
    (unknown.path / "manifest.json").write_text("not json")  # an unreadable pack is refused and ledgered, not a crash
    with pytest.raises(ApprovalRefused, match="manifest.json: the manifest cannot be read"):
        valid_approval(services(life), MODEL, V1, "test")
    assert "the manifest cannot be read" in last_refusal(life)
