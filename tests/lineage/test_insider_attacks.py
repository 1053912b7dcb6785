"""An insider who can write the databases, the state dir and the MLflow store, against a real history.

Each attack runs on a copy of the lineage world (v1 and v2 each approved and deployed, a signed rollback to
v1, the kill switch flipped on and off by the business owner). A row, an alias or a ledger entry is a cache:
every attack must end in the safe state (the last verified champion, or refer), with the incident in the
ledger and a non-zero `govern status`, `lineage` or `ledger verify`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from governance import events
from governance.control import ControlStore
from governance.data.generator import generate_applications
from governance.decisions import DecisionLog
from governance.ledger import Ledger
from governance.release.kill_switch import set_kill_switch
from governance.release.production import verified_production
from governance.release.services import Services
from governance.serving.champion import ChampionFollower
from governance.serving.decide import Application, DecisionMaker
from governance.timestamps import utc_now, utc_timestamp
from governance.trust.demo import demo_key_path
from governance.trust.keys import load_private_key
from tests.helpers import travel
from tests.lineage.conftest import copy_of, govern
from tests.lineage.world import MODEL, World

pytestmark = pytest.mark.slow


@pytest.fixture
def attacked(any_world: World, tmp_path: Path):
    """A copy of the history, on each backend, for an insider who can write its databases and state dir."""
    return copy_of(any_world, tmp_path / "govern")


def _sql(settings, statement: str, **params) -> None:
    """What an insider with the database's credentials runs, outside the project's code."""
    engine = sqlalchemy.create_engine(settings.ledger_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(statement), params)
    engine.dispose()


def _answers(settings) -> list[dict]:
    """What serving answers now: the follower derives champion and kill switch, the maker decides."""
    model = Services(settings).governed_model(MODEL)
    services = Services(settings)
    follower = ChampionFollower(settings, model, services.registry, services.control)
    follower.refresh()
    follower.refresh()  # an incident is one seen at two polls in a row
    maker = DecisionMaker(model, follower, ControlStore.for_settings(settings), DecisionLog.for_settings(settings))
    rows = generate_applications(20, seed=5).to_dict("records")
    return maker.decide([Application({c: row[c] for c in model.feature_columns}, None) for row in rows])


def _incidents(settings) -> list[str]:
    return [i.description for i in Services(settings).ledger.events(events.ProductionIncident, model=MODEL)]


def test_a_forged_deployment_row_and_alias_are_not_completed_and_serving_keeps_the_verified_champion(attacked):
    services = Services(attacked)
    real = services.control.deployments(MODEL, "completed")[-1]
    _sql(
        attacked,
        "INSERT INTO deployments (model, version, kind, status, artifact_sha256, evidence_digest, "
        "approval_digest, previous_version, actor, started_at) VALUES (:model, 2, 'deploy', 'started', :artifact, "
        ":evidence, :approval, 1, 'system:production_deployment', :at)",
        model=MODEL,
        artifact="a" * 64,
        evidence=real.evidence_digest,
        approval=real.approval_digest,
        at=utc_timestamp(),
    )
    services.registry.set_champion(MODEL, 2)

    status = govern(attacked, "status")
    assert status.exit_code == 1, status.output
    assert "INCIDENT" in status.output and "not backed by the signed record" in status.output
    assert services.control.deployments(MODEL)[-1].status == "aborted"
    assert verified_production(services, MODEL).champion == 1
    assert {a["version"] for a in _answers(attacked)} == {1}
    assert any("champion alias points at credit_scoring-v2" in i for i in _incidents(attacked))
    assert govern(attacked, "lineage", MODEL, "2").exit_code == 1


def test_a_hand_moved_alias_is_ignored_by_serving_and_ledgered(attacked):
    Services(attacked).registry.set_champion(MODEL, 2)  # v2 was rolled back from: a person took it out
    assert {a["version"] for a in _answers(attacked)} == {1}
    assert [i for i in _incidents(attacked) if "champion alias points at credit_scoring-v2" in i]


def test_appended_rehashed_forgeries_of_an_approval_and_a_deployment_deploy_nothing(attacked):
    """The attacker appends well-chained entries: the chain verifies, the signatures behind them do not exist."""
    services = Services(attacked)
    ledger = services.ledger
    forged = "f" * 64
    granted = ledger.latest(events.ApprovalGranted, model=MODEL, version=f"{MODEL}-v2")
    ledger.append(
        events.ApprovalGranted(
            actor="ravi",
            model=MODEL,
            version=f"{MODEL}-v2",
            statement=forged,
            evidence_pack=granted.evidence_pack,
            policy=granted.policy,
            roles=("model_risk_approver",),
        )
    )
    completed = ledger.latest(events.DeploymentCompleted, model=MODEL, version=f"{MODEL}-v2")
    ledger.append(
        events.DeploymentCompleted(
            actor="system:production_deployment",
            model=MODEL,
            version=f"{MODEL}-v2",
            artifact=completed.artifact,
            evidence_pack=completed.evidence_pack,
            approval=forged,
            deployment_id=999,
            previous_version=1,
        )
    )
    assert ledger.verify().ok  # nothing wrong with the chain itself

    # The latest move does not verify: nothing is served (never an older move, which a person moved away from).
    assert verified_production(services, MODEL).champion is None
    assert {(a["outcome"], a["safe_state"]) for a in _answers(attacked)} == {("refer", True)}
    lineage = govern(attacked, "lineage", MODEL, "2")
    assert lineage.exit_code == 1 and f"no signed statement {forged[:12]} is recorded" in lineage.output
    assert govern(attacked, "status").exit_code == 1


def test_a_forged_gate_entry_does_not_change_who_may_approve(attacked):
    """Who may approve a version is judged on the gate decision sealed in the pack the approval signed, not on
    the latest `gate.decision` entry, which a ledger writer can append: naming the champion's approver as its
    trainer (or calling it low risk) changes nothing."""
    services = Services(attacked)
    gate = services.ledger.latest(events.GateDecided, model=MODEL, version=f"{MODEL}-v1")
    forged = {"evidence": gate.evidence, "policy": gate.policy, "allowed": True, "requested_by": ()}
    services.ledger.append(
        events.GateDecided(actor="system:release_gate", model=MODEL, version=f"{MODEL}-v1", risk_tier="high",
                           trained_by=("ravi",), **forged)
    )  # fmt: skip
    assert services.ledger.verify().ok
    assert verified_production(services, MODEL).champion == 1  # ravi's approval still verifies
    assert {a["version"] for a in _answers(attacked)} == {1}


def test_a_replayed_approval_does_not_bring_back_a_version_rolled_back_from(attacked):
    """v2's real approval and deployment id, replayed after paul rolled v2 back (the reviewer's C1)."""
    ledger = Services(attacked).ledger
    completed = ledger.latest(events.DeploymentCompleted, model=MODEL, version=f"{MODEL}-v2")
    ledger.append(
        events.DeploymentCompleted(
            actor="system:production_deployment",
            model=MODEL,
            version=f"{MODEL}-v2",
            artifact=completed.artifact,
            evidence_pack=completed.evidence_pack,
            approval=completed.approval,
            deployment_id=completed.deployment_id,
            previous_version=1,
        )
    )
    production = verified_production(Services(attacked), MODEL)
    assert production.champion is None and any("already completed" in i for i in production.incidents)
    assert {a["outcome"] for a in _answers(attacked)} == {"refer"}


def test_a_replayed_approval_under_a_new_deployment_id_is_refused(attacked):
    ledger = Services(attacked).ledger
    started = ledger.latest(events.DeploymentStarted, model=MODEL, version=f"{MODEL}-v2")
    for step in (events.DeploymentStarted, events.DeploymentCompleted):
        ledger.append(
            step(
                actor="system:production_deployment",
                model=MODEL,
                version=f"{MODEL}-v2",
                artifact=started.artifact,
                evidence_pack=started.evidence_pack,
                approval=started.approval,
                deployment_id=999,
                previous_version=1,
            )
        )
    production = verified_production(Services(attacked), MODEL)
    assert production.champion is None and any("reuses the authority" in i for i in production.incidents)


def test_a_replayed_enable_does_not_lift_a_later_disable(attacked):
    services = Services(attacked)
    set_kill_switch(services, MODEL, True, "bea", load_private_key(demo_key_path(attacked, "bea")), "fraud ring")
    old = services.ledger.latest(events.KillSwitchOff, model=MODEL)
    services.ledger.append(
        events.KillSwitchOff(actor="bea", model=MODEL, statement=old.statement, policy=old.policy, reason="all clear")
    )
    _sql(attacked, "UPDATE kill_switches SET disabled = false WHERE model = :model", model=MODEL)
    assert verified_production(services, MODEL).kill_switch
    assert {a["outcome"] for a in _answers(attacked)} == {"refer"}


def test_a_statement_cedar_refused_authorises_nothing(attacked):
    """dana (a data scientist) signs an approval of v2; Cedar refuses it, but the statement is recorded."""
    from governance.release.approvals import ApprovalRefused, decide

    services = Services(attacked)
    with pytest.raises(ApprovalRefused):
        decide(services, MODEL, f"{MODEL}-v2", "approve", "dana", load_private_key(demo_key_path(attacked, "dana")))
    [dana] = services.statements.find(action="approve", principal="dana")
    started = services.ledger.latest(events.DeploymentStarted, model=MODEL, version=f"{MODEL}-v2")
    for step in (events.DeploymentStarted, events.DeploymentCompleted):
        services.ledger.append(
            step(
                actor="system:production_deployment",
                model=MODEL,
                version=f"{MODEL}-v2",
                artifact=started.artifact,
                evidence_pack=started.evidence_pack,
                approval=dana.digest,
                deployment_id=77,
                previous_version=1,
            )
        )
    assert verified_production(services, MODEL).champion is None
    assert {a["outcome"] for a in _answers(attacked)} == {"refer"}


def test_an_edited_kill_switch_row_lifts_nothing(attacked):
    services = Services(attacked)
    set_kill_switch(services, MODEL, True, "bea", load_private_key(demo_key_path(attacked, "bea")), "drill")
    _sql(attacked, "UPDATE kill_switches SET disabled = false WHERE model = :model", model=MODEL)
    answers = _answers(attacked)
    assert {a["outcome"] for a in answers} == {"refer"} and all(a["safe_state"] for a in answers)
    assert any("kill switch row says off" in i for i in _incidents(attacked))
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "KILL SWITCH ON" in status.output


def test_a_payload_removed_outside_retention_fails_verification(attacked):
    seq = Ledger.for_settings(attacked).size() - 1
    _sql(attacked, "UPDATE ledger_entries SET payload = NULL WHERE seq = :seq", seq=seq)
    verify = govern(attacked, "ledger", "verify")
    assert verify.exit_code != 0 and "removed outside retention" in verify.output


@pytest.mark.parametrize(
    "dated, cutoff, problem",
    [
        (None, timedelta(seconds=1), "closer to the run than the shortest retention"),
        (timedelta(days=400), timedelta(days=399), "in the future"),
    ],
    ids=["cut-off at the run", "run dated in the future"],
)
def test_a_forged_retention_run_does_not_explain_fresh_payloads_away(attacked, monkeypatch, dated, cutoff, problem):
    ledger = Ledger.for_settings(attacked)
    ledger.expire_payloads(utc_now() + timedelta(seconds=1))
    if dated:
        travel(monkeypatch, dated)
    forged = utc_timestamp(utc_now() + cutoff - (dated or timedelta()))
    ledger.append(events.RetentionApplied(actor="system:retention", model=MODEL, ledger_payloads_before=forged))
    monkeypatch.undo()
    verify = govern(attacked, "ledger", "verify")
    assert verify.exit_code != 0 and problem in verify.output, verify.output


def test_the_same_expiry_by_a_retention_run_a_day_later_verifies(attacked, monkeypatch):
    cutoff = utc_now() + timedelta(seconds=1)
    ledger = Ledger.for_settings(attacked)
    ledger.expire_payloads(cutoff)
    travel(monkeypatch, timedelta(days=1, seconds=2))
    ledger.append(
        events.RetentionApplied(actor="system:retention", model=MODEL, ledger_payloads_before=utc_timestamp(cutoff))
    )
    assert govern(attacked, "ledger", "verify").exit_code == 0


@pytest.mark.parametrize("reason", ["", "   "])
def test_the_kill_switch_is_not_lifted_without_a_reason(attacked, reason):
    before = Ledger.for_settings(attacked).size()
    result = govern(attacked, "enable", MODEL, "--reason", reason, "--as", "bea")
    assert result.exit_code != 0 and "needs a reason" in f"{result.output}{result.exception}"
    assert Ledger.for_settings(attacked).size() == before


def test_trace_takes_the_move_in_force_from_the_signed_record_not_the_rows(any_world, attacked):
    decision = any_world.decisions["after_rollback"][0]["decision_id"]
    before = json.loads(govern(attacked, "trace", decision, "--json").output)
    _sql(attacked, "UPDATE deployments SET finished_at = '2000-01-01T00:00:00.000000Z', version = 2")
    after = json.loads(govern(attacked, "trace", decision, "--json").output)
    assert after["in_force"] == before["in_force"] and after["in_force"]["kind"] == "rollback"
    assert after["in_force"]["version"] == f"{MODEL}-v1"


def test_lineage_takes_champion_periods_and_status_from_the_ledger_not_the_rows(attacked):
    def lineage(version: str) -> dict:
        result = json.loads(govern(attacked, "lineage", MODEL, version, "--json").output)
        return {"status": result["summary"]["status"], "periods": result["kill_switch"]["champion_periods"]}

    before = {version: lineage(version) for version in ("1", "2")}
    _sql(attacked, "UPDATE deployments SET finished_at = '2000-01-01T00:00:00.000000Z', version = 2")
    assert {version: lineage(version) for version in ("1", "2")} == before
    assert before["1"]["status"] == "champion" and before["2"]["periods"]
