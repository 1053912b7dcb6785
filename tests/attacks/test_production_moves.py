"""Attacks on what moves production: deployment rows, the MLflow alias, ledgered moves and approvals, rollbacks.

Issue 20's paths 1 (a forged `started` deployment row and the alias moved to it, then recovery) and 2 (an alias
moved by hand to a version a person rolled back from), appended and replayed moves, and a rollback to a version
nobody approved. Every attack runs on a copy of the lineage world (v1 and v2 each approved and deployed, a signed
rollback to v1, the kill switch flipped on and off by the business owner), or of that world with v3 and v4
awaiting approval, on SQLite and on PostgreSQL. Each must end with the last verified champion served (or refer),
and be detected: the incident or refusal in the ledger, a non-zero `govern status` or `lineage`.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from governance import events
from governance.digests import digest_of
from governance.ledger import LedgerError
from governance.registry import parse_version_key, version_key
from governance.release import evidence_pack
from governance.release.approvals import ApprovalRefused, decide, latest_request, request_approval
from governance.release.deployment import (
    ROLLBACK_STATEMENT_VALIDITY,
    DeploymentRefused,
    _ledger_step,
    _move,
    rollback,
)
from governance.release.production import verified_production
from governance.release.services import Services
from governance.timestamps import utc_now, utc_timestamp
from governance.trust.statements import Statement, sign
from tests.attacks.support import (
    POLL_SECONDS,
    V3,
    V4,
    answers,
    ask,
    drop_inserts,
    incidents,
    key_of,
    replayed_rollback,
    rewrite_consistently,
    scoring_api,
    sql,
)
from tests.helpers import wait_until
from tests.lineage.conftest import govern
from tests.lineage.world import MODEL

pytestmark = pytest.mark.slow


def _forge_started_row(settings, version: int) -> None:
    """Issue 20, path 1: a `started` deployment row nobody signed for, borrowing the champion's approval."""
    real = Services(settings).control.deployments(MODEL, "completed")[-1]
    sql(
        settings,
        "INSERT INTO deployments (model, version, kind, status, artifact_sha256, evidence_digest, "
        "approval_digest, previous_version, actor, started_at) VALUES (:model, :version, 'deploy', 'started', "
        ":artifact, :evidence, :approval, 1, 'system:production_deployment', :at)",
        model=MODEL,
        version=version,
        artifact="a" * 64,
        evidence=real.evidence_digest,
        approval=real.approval_digest,
        at=utc_timestamp(),
    )
    Services(settings).registry.set_champion(MODEL, version)


def test_a_forged_deployment_row_and_alias_are_not_completed_and_serving_keeps_the_verified_champion(attacked):
    _forge_started_row(attacked, 2)  # v2: a person rolled it back
    services = Services(attacked)

    status = govern(attacked, "status")  # recovery (`reconcile`) runs here, as at serving's start
    assert status.exit_code == 1, status.output
    assert "INCIDENT" in status.output and "not backed by the signed record" in status.output
    assert services.control.deployments(MODEL)[-1].status == "aborted"
    assert verified_production(services, MODEL).champion == 1
    assert {a["version"] for a in answers(attacked)} == {1}
    assert incidents(attacked, "champion alias points at credit_scoring-v2")
    assert govern(attacked, "lineage", MODEL, "2").exit_code == 1


def test_a_forged_deployment_row_for_a_version_nobody_approved_is_not_completed(pending):
    """Path 1 as the issue tells it: the version the row and the alias name was never approved (v3 awaits it)."""
    settings = pending.settings
    _forge_started_row(settings, 3)
    status = govern(settings, "status")
    assert status.exit_code == 1 and "not backed by the signed record" in status.output, status.output
    services = Services(settings)
    assert services.control.deployments(MODEL)[-1].status == "aborted"
    assert not services.ledger.events(events.DeploymentCompleted, model=MODEL, version=V3)
    assert verified_production(services, MODEL).champion == 1
    assert {a["version"] for a in answers(settings)} == {1}
    assert incidents(settings, f"champion alias points at {V3}")
    lineage = govern(settings, "lineage", MODEL, "3")
    assert lineage.exit_code == 1 and f"{V3}: pending approval" in lineage.output, lineage.output
    assert f"FINDING     production incident: the MLflow champion alias points at {V3}" in lineage.output


def test_a_hand_moved_alias_is_ignored_by_the_scoring_api_and_ledgered_once(attacked):
    """Path 2: the alias moved with the MLflow client to v2, a version once deployed that a person rolled back."""
    alias = f"the MLflow champion alias points at {version_key(MODEL, 2)}, but the verified champion is " + (
        version_key(MODEL, 1)
    )
    with scoring_api(attacked) as client:
        wait_until(lambda: client.get(f"/models/{MODEL}").json()["served_version"] == 1, "v1 to be served")
        Services(attacked).registry.set_champion(MODEL, 2)
        time.sleep(3 * POLL_SECONDS)  # the follower has read the moved alias
        answered = ask(client, attacked)
        for answer in answered:
            assert answer["version"] == 1 and not answer["safe_state"], answer
        status = client.get(f"/models/{MODEL}").json()
        assert (status["champion_version"], status["served_version"]) == (1, 1)
        wait_until(lambda: incidents(attacked, alias), "the moved alias to be ledgered as an incident")
        time.sleep(3 * POLL_SECONDS)  # further polls see the same disagreement
        assert len(incidents(attacked, alias)) == 1  # ledgered once
    assert {a["version"] for a in answers(attacked)} == {1}
    shown = govern(attacked, "status")
    assert shown.exit_code == 1 and f"INCIDENT: {alias}" in shown.output, shown.output
    lineage = govern(attacked, "lineage", MODEL, "2")
    assert lineage.exit_code == 1 and f"FINDING     production incident: {alias}" in lineage.output, lineage.output
    traced = govern(attacked, "trace", answered[0]["decision_id"])
    assert traced.exit_code == 1 and alias in traced.output, traced.output


def test_an_incident_entry_appended_ahead_with_a_soothing_text_keeps_the_real_one_in_the_ledger(attacked):
    """A ledger writer predicts the moved alias's incident text and appends its digest with another text first:
    status still ledgers the real text (an entry whose digest is not of its own text records nothing)."""
    alias = f"the MLflow champion alias points at {version_key(MODEL, 2)}, but the verified champion is " + (
        version_key(MODEL, 1)
    )
    services = Services(attacked)
    services.ledger.append(
        events.ProductionIncident(
            actor="system:serving",
            model=MODEL,
            incident=digest_of({"model": MODEL, "incident": alias}),
            description="routine cache refresh (no action needed)",
        )
    )
    services.registry.set_champion(MODEL, 2)
    shown = govern(attacked, "status")
    assert shown.exit_code == 1 and f"INCIDENT: {alias}" in shown.output, shown.output
    assert "not an incident the project recorded (its digest is not of its text): routine cache refresh" in (
        " ".join(shown.output.split())
    ), shown.output
    assert len(incidents(attacked, alias)) == 1
    assert govern(attacked, "status").exit_code == 1 and len(incidents(attacked, alias)) == 1  # once


def test_appended_rehashed_forgeries_of_an_approval_and_a_deployment_deploy_nothing(attacked):
    """The attacker appends well-chained entries: the chain verifies, the signatures behind them do not exist."""
    services = Services(attacked)
    ledger = services.ledger
    forged = "f" * 64
    ledger.append(replace(ledger.latest(events.ApprovalGranted, model=MODEL, version=f"{MODEL}-v2"), statement=forged))
    completed = ledger.latest(events.DeploymentCompleted, model=MODEL, version=f"{MODEL}-v2")
    ledger.append(replace(completed, approval=forged, deployment_id=999, previous_version=1))
    assert ledger.verify().ok  # nothing wrong with the chain itself

    # The latest move does not verify: nothing is served (never an older move, which a person moved away from).
    assert verified_production(services, MODEL).champion is None
    assert {(a["outcome"], a["safe_state"]) for a in answers(attacked)} == {("refer", True)}
    lineage = govern(attacked, "lineage", MODEL, "2")
    assert lineage.exit_code == 1 and f"no signed statement {forged[:12]} is recorded" in lineage.output
    assert govern(attacked, "status").exit_code == 1


def test_a_replayed_approval_does_not_bring_back_a_version_rolled_back_from(attacked):
    """v2's real approval and deployment id, replayed after paul rolled v2 back (the reviewer's C1)."""
    ledger = Services(attacked).ledger
    completed = ledger.latest(events.DeploymentCompleted, model=MODEL, version=f"{MODEL}-v2")
    ledger.append(replace(completed, previous_version=1))
    production = verified_production(Services(attacked), MODEL)
    assert production.champion is None and any("already completed" in i for i in production.incidents)
    assert {a["outcome"] for a in answers(attacked)} == {"refer"}
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "already completed" in status.output, status.output


def test_a_replayed_approval_under_a_new_deployment_id_is_refused(attacked):
    ledger = Services(attacked).ledger
    for step in (events.DeploymentStarted, events.DeploymentCompleted):
        ledger.append(
            replace(ledger.latest(step, model=MODEL, version=f"{MODEL}-v2"), deployment_id=999, previous_version=1)
        )
    production = verified_production(Services(attacked), MODEL)
    assert production.champion is None and any("reuses the authority" in i for i in production.incidents)
    assert {a["outcome"] for a in answers(attacked)} == {"refer"}
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "reuses the authority" in status.output, status.output


def test_a_statement_cedar_refused_authorises_nothing(attacked):
    """dana (a data scientist) signs an approval of v2; Cedar refuses it, but the statement is recorded."""

    services = Services(attacked)
    with pytest.raises(ApprovalRefused):
        decide(services, MODEL, f"{MODEL}-v2", "approve", "dana", key_of(attacked, "dana"))
    [dana] = services.statements.find(action="approve", principal="dana")
    for step in (events.DeploymentStarted, events.DeploymentCompleted):
        genuine = services.ledger.latest(step, model=MODEL, version=f"{MODEL}-v2")
        services.ledger.append(replace(genuine, approval=dana.digest, deployment_id=77, previous_version=1))
    assert verified_production(services, MODEL).champion is None
    assert {a["outcome"] for a in answers(attacked)} == {"refer"}
    assert govern(attacked, "status").exit_code == 1
    lineage = govern(attacked, "lineage", MODEL, "2")
    assert lineage.exit_code == 1, lineage.output


def test_trace_takes_the_move_in_force_from_the_signed_record_not_the_rows(any_world, attacked):
    decision = any_world.decisions["after_rollback"][0]["decision_id"]
    before = json.loads(govern(attacked, "trace", decision, "--json").output)
    sql(attacked, "UPDATE deployments SET finished_at = '2000-01-01T00:00:00.000000Z', version = 2")
    after = json.loads(govern(attacked, "trace", decision, "--json").output)
    assert after["in_force"] == before["in_force"] and after["in_force"]["kind"] == "rollback"
    assert after["in_force"]["version"] == f"{MODEL}-v1"


def test_lineage_takes_champion_periods_and_status_from_the_ledger_not_the_rows(attacked):
    def lineage(version: str) -> dict:
        result = json.loads(govern(attacked, "lineage", MODEL, version, "--json").output)
        return {"status": result["summary"]["status"], "periods": result["kill_switch"]["champion_periods"]}

    before = {version: lineage(version) for version in ("1", "2")}
    sql(attacked, "UPDATE deployments SET finished_at = '2000-01-01T00:00:00.000000Z', version = 2")
    assert {version: lineage(version) for version in ("1", "2")} == before
    assert before["1"]["status"] == "champion" and before["2"]["periods"]


@pytest.mark.parametrize("version", [V3, V4])
def test_a_rollback_to_a_version_nobody_approved_is_refused_and_ledgered(pending, version):
    """v3 and v4 passed their gates and await approval: a rollback must not be a way round it."""
    settings = pending.settings
    number = int(version.rsplit("v", 1)[1])
    with pytest.raises(
        DeploymentRefused, match="A rollback goes only to a version that was approved and deployed before"
    ):
        rollback(Services(settings), MODEL, "paul", key_of(settings, "paul"), "v1 suspect", to_version=number)
    cli = govern(settings, "rollback", MODEL, "--to", str(number), "--as", "paul", "--reason", "v1 suspect")
    assert cli.exit_code != 0 and "approved and deployed before" in f"{cli.output}{cli.exception}"
    refusals = Services(settings).ledger.events(events.DeploymentRefused, model=MODEL, version=version)
    assert len(refusals) == 2 and all(r.actor == "paul" for r in refusals), refusals
    assert Services(settings).registry.champion(MODEL) == 1
    assert verified_production(Services(settings), MODEL).champion == 1
    assert {a["version"] for a in answers(settings)} == {1}


def test_completed_deployment_rows_edited_by_hand_are_reported(attacked):
    """The rows trace and lineage no longer take the move in force from (above), edited: every completed move now
    names v2 and a date in 2000. Serving and the record are unmoved (that part holds); the disagreement between
    the cache and the record must be reported."""
    sql(attacked, "UPDATE deployments SET finished_at = '2000-01-01T00:00:00.000000Z', version = 2")
    assert verified_production(Services(attacked), MODEL).champion == 1
    assert {a["version"] for a in answers(attacked)} == {1}
    lineage = govern(attacked, "lineage", MODEL, "2")
    assert lineage.exit_code == 1, lineage.output
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "INCIDENT" in status.output, status.output


def _moved_with(pending, version: str, approval: str) -> None:
    """The insider grants `approval` in the ledger and runs the project's own move (row, alias, ledger) to
    `version` with it, skipping every check the release makes."""
    services = pending.services
    requested = services.ledger.latest(events.ApprovalRequested, model=MODEL, version=version)
    principal = services.statements.by_digest(approval).signed.statement.principal
    if not any(g.statement == approval for g in services.ledger.events(events.ApprovalGranted, version=version)):
        services.ledger.append(
            events.ApprovalGranted(
                actor=principal,
                model=MODEL,
                version=version,
                statement=approval,
                evidence_pack=requested.evidence_pack,
                policy=requested.policy,
                roles=("model_risk_approver",),
            )
        )
    _move(
        services,
        MODEL,
        parse_version_key(version)[1],
        kind="deploy",
        actor="system:production_deployment",
        artifact_sha256=requested.artifact,
        evidence_digest=requested.evidence_pack,
        approval_digest=approval,
    )


def _not_served(settings, version: str, named: str) -> None:
    """The forged move does not verify: serving answers in the safe state, and lineage names why (`named`)."""
    assert verified_production(Services(settings), MODEL).champion is None
    assert {(a["outcome"], a["safe_state"]) for a in answers(settings)} == {("refer", True)}
    lineage = govern(settings, "lineage", MODEL, version.rsplit("v", 1)[1])
    assert lineage.exit_code == 1 and named in lineage.output, lineage.output


def _vetoed(settings, version: str) -> None:
    """Nothing the rejection vetoed is served, and status and lineage say so."""
    status = govern(settings, "status")
    assert status.exit_code == 1 and "a rejected pack is never released" in status.output, status.output
    _not_served(settings, version, "rhea rejected evidence pack")


def test_an_approval_granted_around_a_rejection_deploys_nothing(pending):
    """Nobody verifiably requested v4, so two approvers must approve it. ravi approves, rhea rejects, then signs an
    approval too: refused, but her signed statement is recorded. A ledger writer grants it and runs the move: two
    approvers' authentic signatures stand behind it, and the rejection vetoes them."""
    settings, services = pending.settings, pending.services
    assert decide(services, MODEL, V4, "approve", "ravi", key_of(settings, "ravi")).awaiting_second_approver
    decide(services, MODEL, V4, "reject", "rhea", key_of(settings, "rhea"), comment="calibration drifts")
    with pytest.raises(ApprovalRefused, match="rhea rejected this evidence pack"):
        decide(services, MODEL, V4, "approve", "rhea", key_of(settings, "rhea"))
    [approval] = services.statements.find(action="approve", principal="rhea", version=V4)
    _moved_with(pending, V4, approval.signed.digest)
    _vetoed(settings, V4)


def test_an_approval_rejected_before_its_release_deploys_nothing_and_its_pack_stays_rejected(pending):
    """dana requested v3, so ravi's approval alone is granted; rhea rejects the pack before the sensor releases it.
    The release refuses, the same pack cannot be requested again, and a move run by hand with ravi's genuine grant
    is vetoed."""
    settings, services = pending.settings, pending.services
    granted = decide(services, MODEL, V3, "approve", "ravi", key_of(settings, "ravi"))
    decide(services, MODEL, V3, "reject", "rhea", key_of(settings, "rhea"), comment="calibration drifts")
    assert not pending.release(V3).success and "rhea rejected this evidence pack" in pending.release_refusal()
    request = latest_request(services, MODEL, V3)
    with pytest.raises(ApprovalRefused, match="rejected this evidence pack.*run the release gate again"):
        request_approval(services, evidence_pack.verify(Path(request.pack_path), request.pack_digest), ("dana",))
    assert latest_request(services, MODEL, V3) == request
    _moved_with(pending, V3, granted.statement_digest)
    _vetoed(settings, V3)


@pytest.mark.parametrize(
    "edit",
    [
        None,
        "UPDATE signed_statements SET action = 'approve' WHERE action = 'reject'",
        "UPDATE signed_statements SET version = 'hidden' WHERE action = 'reject'",
        "DELETE FROM signed_statements WHERE action = 'reject'",
    ],
    ids=["kept-out", "relabelled", "moved", "deleted"],
)
def test_a_rejection_kept_out_of_the_ledger_still_vetoes(pending, edit):
    """dana requested v3 and ravi approved it; a writer of the governance database adds a trigger that drops
    `approval.rejected` entries, so rhea's rejection is signed and recorded but never ledgered (she is told),
    relabels, moves or deletes her statement's row (the columns are caches; the ledger recorded the statement),
    and runs the move with ravi's genuine grant: her rejection vetoes it all the same."""
    settings, services = pending.settings, pending.services
    granted = decide(services, MODEL, V3, "approve", "ravi", key_of(settings, "ravi"))
    drop_inserts(settings, "approval.rejected")
    with pytest.raises(LedgerError, match="a trigger or rule on ledger_entries"):
        decide(services, MODEL, V3, "reject", "rhea", key_of(settings, "rhea"), comment="calibration drifts")
    assert services.ledger.latest(events.ApprovalRejected, model=MODEL, version=V3) is None
    if edit:
        sql(settings, edit)
    _moved_with(pending, V3, granted.statement_digest)
    _vetoed(settings, V3)


def test_a_rejection_recorded_again_after_the_move_still_vetoes_it(pending):
    """As above, and after running the move the writer appends a copy of the `statement.recorded` entry of rhea's
    rejection, hoping the copy (after the move) stands for it: the first record counts, and so does the date she
    signed it."""
    settings, services = pending.settings, pending.services
    granted = decide(services, MODEL, V3, "approve", "ravi", key_of(settings, "ravi"))
    drop_inserts(settings, "approval.rejected")
    with pytest.raises(LedgerError, match="a trigger or rule on ledger_entries"):
        decide(services, MODEL, V3, "reject", "rhea", key_of(settings, "rhea"), comment="calibration drifts")
    [recorded] = [
        e for e in services.ledger.events(events.StatementRecorded, model=MODEL, version=V3) if e.actor == "rhea"
    ]
    _moved_with(pending, V3, granted.statement_digest)
    services.ledger.append(recorded)
    _vetoed(settings, V3)


def test_a_cosigner_s_approval_spent_on_a_deployment_does_not_deploy_the_version_again(pending):
    """Nobody verifiably requested v4: ravi approves, then rhea, and the release deploys it on her approval with
    his as the second. paul rolls back to v1. A ledger writer grants ravi's approval (never granted: it waited for
    a second) and runs a move of v4 on it, rhea's as the second again: both were spent on v4's deployment, so a
    version deployed again needs a new approval, and the move does not verify."""
    settings, services = pending.settings, pending.services
    first = decide(services, MODEL, V4, "approve", "ravi", key_of(settings, "ravi"))
    assert first.awaiting_second_approver
    decide(services, MODEL, V4, "approve", "rhea", key_of(settings, "rhea"))
    assert pending.release(V4).success and verified_production(services, MODEL).champion == 4
    rollback(services, MODEL, "paul", key_of(settings, "paul"), "v4 suspect", to_version=1)
    _moved_with(pending, V4, first.statement_digest)
    _not_served(settings, V4, "was spent on the deployment of this pack")


def test_a_version_deployed_again_needs_two_new_approvals_not_one(pending):
    """v4 (unknown requester) was deployed on ravi's and rhea's approvals and rolled back from. ravi approves it
    again: rhea's approval was spent on the first deployment, so his waits for a second approver (granting it
    would deploy a move production does not verify)."""
    settings, services = pending.settings, pending.services
    decide(services, MODEL, V4, "approve", "ravi", key_of(settings, "ravi"))
    decide(services, MODEL, V4, "approve", "rhea", key_of(settings, "rhea"))
    assert pending.release(V4).success
    rollback(services, MODEL, "paul", key_of(settings, "paul"), "v4 suspect", to_version=1)
    again = decide(services, MODEL, V4, "approve", "ravi", key_of(settings, "ravi"))
    assert again.awaiting_second_approver
    assert verified_production(services, MODEL).champion == 1


def test_a_move_started_before_a_rejection_and_completed_after_it_deploys_nothing(pending):
    """dana requested v3 and ravi approved it. A ledger writer pre-arms a move with ravi's genuine grant (its start
    appended while nobody had rejected the pack), rhea then rejects the pack, and the writer completes the move: a
    move is judged when it completes, so the rejection vetoes it however early it started."""
    settings, services = pending.settings, pending.services
    granted = decide(services, MODEL, V3, "approve", "ravi", key_of(settings, "ravi"))
    requested = services.ledger.latest(events.ApprovalRequested, model=MODEL, version=V3)
    move = services.control.start_deployment(
        model=MODEL,
        version=parse_version_key(V3)[1],
        kind="deploy",
        artifact_sha256=requested.artifact,
        evidence_digest=requested.evidence_pack,
        approval_digest=granted.statement_digest,
        previous_version=1,
        actor="system:production_deployment",
    )
    _ledger_step(services, move, "started")
    decide(services, MODEL, V3, "reject", "rhea", key_of(settings, "rhea"), comment="calibration drifts")
    services.registry.set_champion(MODEL, move.version)
    _ledger_step(services, services.control.finish_deployment(move.id, "completed"), "completed")
    _vetoed(settings, V3)


def test_a_version_whose_pack_was_rejected_after_its_deployment_is_not_rolled_back_to(attacked):
    """v2's pack was approved and deployed, then rolled back from; a rejection of it since means a rollback to
    v2 would release a rejected pack."""
    services = Services(attacked)
    decide(services, MODEL, f"{MODEL}-v2", "reject", "rhea", key_of(attacked, "rhea"), comment="found a leak")
    with pytest.raises(DeploymentRefused, match="rhea rejected its evidence pack"):
        rollback(services, MODEL, "paul", key_of(attacked, "paul"), "v1 suspect", to_version=2)
    assert verified_production(services, MODEL).champion == 1


def test_a_completion_recorded_twice_in_a_row_is_one_move(attacked):
    """Recovery racing the move it recovers ledgers the same completion as the mover does: the same move, recorded
    twice, leaves the champion verified."""
    services = Services(attacked)
    completed = services.ledger.latest(events.RollbackCompleted, model=MODEL)
    services.ledger.append(replace(completed, recovered=True))
    production = verified_production(services, MODEL)
    assert production.champion == 1 and not production.incidents, production


def test_an_approval_from_a_clock_a_minute_ahead_deploys(pending):
    """ravi's machine runs a minute ahead of the deployer's: his approval is dated after the move starts, within
    the clock skew the statement store accepts, and the release it triggers verifies."""
    settings, services = pending.settings, pending.services
    decide(services, MODEL, V3, "approve", "ravi", key_of(settings, "ravi"), now=utc_now() + timedelta(seconds=60))
    assert pending.release(V3).success
    assert verified_production(services, MODEL).champion == 3


def test_a_refused_rollback_s_statement_completes_no_move(attacked):
    """paul's rollback to v1, the champion already, is refused after his statement was recorded; a ledger writer
    runs the move with that statement anyway: a statement a refusal names is spent, so the move does not verify."""
    services = Services(attacked)
    with pytest.raises(DeploymentRefused, match="already the champion"):
        rollback(services, MODEL, "paul", key_of(attacked, "paul"), "once more", to_version=1)
    refused = services.ledger.latest(events.DeploymentRefused, model=MODEL)
    replayed_rollback(services, 1, refused.statement, "once more")
    production = verified_production(services, MODEL)
    assert production.champion is None, production
    assert any(f"rollback statement {refused.statement[:12]} was refused" in i for i in production.incidents)


def _unused_rollback_to_v2(settings) -> str:
    """paul's signed rollback to v2, recorded by the store, and then paul's own rollbacks to v2 and back to v1: the
    first statement is left unused, as a `govern rollback` that failed after recording it leaves it. Its digest."""
    services = Services(settings)
    unused = sign(
        Statement.new(
            "rollback",
            {"model": MODEL, "version": f"{MODEL}-v2"},
            "paul",
            valid_for=ROLLBACK_STATEMENT_VALIDITY,
            comment="v1 suspect",
        ),
        key_of(settings, "paul"),
    )
    services.statements.submit(unused, services.roster)
    rollback(services, MODEL, "paul", key_of(settings, "paul"), "v1 suspect (retry)", to_version=2)
    rollback(services, MODEL, "paul", key_of(settings, "paul"), "v2 worse after all", to_version=1)
    assert verified_production(services, MODEL).champion == 1
    return unused.digest


def test_a_rollback_statement_left_unused_does_not_undo_a_later_move(attacked):
    """A ledger writer keeps paul's unused rollback to v2 until he has moved production again (back to v1), then
    runs the rollback with it: an older statement never undoes a person's later move (before, v2 was served)."""
    statement = _unused_rollback_to_v2(attacked)
    services = Services(attacked)
    replayed_rollback(services, 2, statement, "v1 suspect")
    production = verified_production(services, MODEL)
    assert production.champion is None, production
    assert any(f"rollback statement {statement[:12]} was recorded before" in i for i in production.incidents)
    assert {a["outcome"] for a in answers(attacked)} == {"refer"}
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "the move it would undo" in status.output, status.output


def test_a_failed_rollback_revived_in_its_rows_and_alias_is_not_completed_by_recovery(attacked):
    """paul's rollback to v2 failed after it started (MLflow was down: the alias did not move) and recovery aborted
    it; paul then rolled back to v2 and on to v1 himself. A writer of the control store and MLflow sets the old
    row back to `started` and moves the alias to v2: recovery completes nothing (before, it completed the rollback
    with paul's old statement and v2 was served). Nothing is written to the ledger by the attacker."""
    services = Services(attacked)
    statement = sign(
        Statement.new(
            "rollback", {"model": MODEL, "version": f"{MODEL}-v2"}, "paul", valid_for=ROLLBACK_STATEMENT_VALIDITY
        ),
        key_of(attacked, "paul"),
    )
    services.statements.submit(statement, services.roster)
    original = services.ledger.latest(events.DeploymentCompleted, model=MODEL, version=f"{MODEL}-v2")
    failed = services.control.start_deployment(
        model=MODEL,
        version=2,
        kind="rollback",
        artifact_sha256=original.artifact,
        evidence_digest=original.evidence_pack,
        approval_digest=original.approval,
        previous_version=1,
        actor="paul",
    )
    _ledger_step(services, failed, "started", statement=statement.digest, reason="v1 suspect")
    assert govern(attacked, "status").exit_code == 0  # recovery aborts it: the alias never moved
    assert services.control.deployment(failed.id).status == "aborted"
    rollback(services, MODEL, "paul", key_of(attacked, "paul"), "v1 suspect (retry)", to_version=2)
    rollback(services, MODEL, "paul", key_of(attacked, "paul"), "v2 worse after all", to_version=1)

    sql(attacked, "UPDATE deployments SET status = 'started' WHERE id = :id", id=failed.id)
    services.registry.set_champion(MODEL, 2)
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "the move it would undo" in status.output, status.output
    assert services.control.deployment(failed.id).status == "aborted"
    assert verified_production(services, MODEL).champion == 1
    assert {a["version"] for a in answers(attacked)} == {1}
    assert incidents(attacked, f"deployments row #{failed.id}", "the move it would undo")


def test_a_started_move_nobody_finished_changes_nothing_and_is_reported(attacked):
    """A ledger writer appends a `deploy.started` of v2 under a new deployment id and never ends it (or removes
    the end of a real one, rehashing the chain): only completed moves move production, and lineage names it."""
    services = Services(attacked)
    started = services.ledger.latest(events.DeploymentStarted, model=MODEL, version=f"{MODEL}-v2")
    services.ledger.append(replace(started, deployment_id=999))
    assert verified_production(services, MODEL).champion == 1
    assert {a["version"] for a in answers(attacked)} == {1}
    lineage = govern(attacked, "lineage", MODEL, "2")
    assert lineage.exit_code == 1, lineage.output
    assert "deployment #999 was started, but the ledger records neither its completion nor its abort" in lineage.output


def test_a_move_with_an_approval_older_than_its_validity_deploys_nothing(pending):
    """ravi's approval of v3, dated eight days ago (approvals are valid for seven): the release refuses it. A
    ledger writer runs the move with it anyway; the move is checked at the approval's age when it completed, so
    it does not verify."""
    settings, services = pending.settings, pending.services
    old = decide(services, MODEL, V3, "approve", "ravi", key_of(settings, "ravi"), now=utc_now() - timedelta(days=8))
    assert not pending.release(V3).success and "signed before the pending approval request" in pending.release_refusal()
    _moved_with(pending, V3, old.statement_digest)
    _not_served(settings, V3, "An approval is valid for 7 days")


def test_a_move_backdated_into_its_approvals_validity_deploys_nothing(pending):
    """As above, and the ledger writer also dates the move's entries back to an hour after ravi dated his approval
    (when it was still valid), re-hashing the chain after them: the move is dated well before the entry the
    ledger appended before it, so it does not verify."""
    settings, services = pending.settings, pending.services
    signed_at = utc_now() - timedelta(days=8)
    old = decide(services, MODEL, V3, "approve", "ravi", key_of(settings, "ravi"), now=signed_at)
    _moved_with(pending, V3, old.statement_digest)
    for step in (events.DeploymentStarted, events.DeploymentCompleted):
        moved = services.ledger.latest(step, model=MODEL, version=V3)
        rewrite_consistently(settings.ledger_url, moved.seq, "ts", utc_timestamp(signed_at + timedelta(hours=1)))
    assert services.ledger.verify().ok  # consistent: only a signed checkpoint would see the rewrite itself
    _not_served(settings, V3, "a date set by hand")
