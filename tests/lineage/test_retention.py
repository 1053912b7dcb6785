"""Retention: inputs, rows and payloads forgotten on time; the chain, the proofs and the trace still hold."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from governance import events
from governance.config import Retention
from governance.decisions import DecisionLog
from governance.lineage.decision_seals import seal_decisions
from governance.lineage.pack import export_evidence
from governance.lineage.proofs import entry_problem
from governance.lineage.retention import apply_retention
from governance.lineage.trace import trace_decision
from governance.lineage.verify import verify_pack
from governance.release.services import Services
from governance.timestamps import utc_now, utc_timestamp
from tests.helpers import travel
from tests.lineage.conftest import copy_of, govern
from tests.lineage.world import APPROVERS, MODEL, V1, V2


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request, settings):
    """Settings whose governance stores are on SQLite (embedded default) or PostgreSQL (production)."""
    if request.param == "postgresql":
        return replace(settings, database_url=request.getfixturevalue("postgres_url"))
    return settings


def record(log: DecisionLog, decision_id: str, model: str, days_ago: float) -> None:
    """A decision written the way the scoring API writes one."""
    log.record(
        decision_id=decision_id,
        ts=utc_timestamp(utc_now() - timedelta(days=days_ago)),
        model=model,
        version=1,
        input_digest="d" * 64,
        features={"annual_income": 41000.0},
        protected={"sex": "F"},
        score=0.3,
        outcome="refer",
        reasons=[],
        kill_switch=False,
    )


def test_the_decision_log_forgets_inputs_then_rows(stores):
    log = DecisionLog.for_settings(stores)
    for decision_id, model, days in (("old", "a", 40), ("other", "b", 40), ("mid", "a", 20), ("new", "a", 1)):
        record(log, decision_id, model, days)
    assert log.models() == ["a", "b"]
    assert log.expire_inputs("a", utc_timestamp(utc_now() - timedelta(days=10))) == 2
    assert log.expire_inputs("a", utc_timestamp(utc_now() - timedelta(days=10))) == 0  # already forgotten
    mid = log.get("mid")
    assert (mid.features, mid.protected) == (None, None)
    assert (mid.input_digest, mid.version, mid.score, mid.outcome) == ("d" * 64, 1, 0.3, "refer")
    assert log.get("new").features == {"annual_income": 41000.0}
    assert log.delete_through("a", log.get("old").seq) == 1
    assert log.get("old") is None and log.get("mid") is not None
    assert log.get("other").features is not None  # another model's decisions are its own retention's business


def test_retention_expires_payloads_and_every_proof_still_verifies(stores, monkeypatch):
    services = Services(stores)
    log = DecisionLog.for_settings(stores)
    record(log, "ancient", MODEL, 30)
    seal_decisions(services, log)  # as the guard seals it; the ledger dates the seal today
    record(log, "recent", MODEL, 0.5)
    for i in range(300):  # more than one Merkle block of stored nodes
        services.ledger.append_record(
            actor="system:test",
            action="report.performance",
            subject={"model": MODEL, "version": V1},
            payload={"auc": 0.8, "i": i},
        )
    retention = Retention(decision_features_days=1, decision_log_days=10, ledger_payload_days=1)
    travel(monkeypatch, timedelta(days=11))  # the seal is past `decision_log_days`; "recent" is sealed by the run
    run = apply_retention(services, retention, [MODEL])
    assert run.ledger_ok and run.ledger_payloads_expired == 301  # the 300 reports and the seal
    assert run.decision_inputs_expired == {MODEL: 1} and run.decisions_deleted == {MODEL: 1}
    assert log.get("recent").features is None and log.get("ancient") is None
    ledger = services.ledger
    size, root = ledger.size(), ledger.root()
    for seq in (1, 150, 256, 300):
        entry = ledger.entry(seq)
        assert entry.payload is None
        assert entry_problem(entry.to_dict(), list(ledger.inclusion_proof(seq).path), size, root) is None
    [applied] = ledger.events(events.RetentionApplied)
    assert applied.actor == "system:retention" and applied.decisions_deleted == 1 and not applied.expired


@pytest.mark.slow
def test_after_retention_a_trace_still_names_version_approver_and_data(world, tmp_path, monkeypatch):
    settings = copy_of(world, tmp_path / "govern")  # retention cannot be undone: work on a copy of the history
    result = govern(settings, "retention", "--json")  # the configured periods: nothing is old enough yet
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ledger_payloads_expired"] == 0
    services = Services(settings)
    retention = Retention(decision_features_days=1, decision_log_days=3653, ledger_payload_days=1)
    travel(monkeypatch, timedelta(days=2))
    run = apply_retention(services, retention, [MODEL])
    assert run.ledger_ok and run.ledger_payloads_expired == services.ledger.size() - 1
    log = DecisionLog.for_settings(settings)
    for phase, version in (("before_rollback", V2), ("after_rollback", V1)):
        for answer in world.decisions[phase]:
            traced = trace_decision(services, log, answer["decision_id"])
            lineage = traced["lineage"]
            assert traced["decision"]["inputs_retained"] is False
            assert (traced["decision"]["version"], traced["approval"]["approver"]) == (version, APPROVERS[version])
            assert (
                lineage["summary"]["data_md5"]
                == world.services.registry.version(MODEL, int(version[-1])).tags["governance.data_md5"]
            )
            assert lineage["findings"] == [] and lineage["evidence_pack"]["status"] == "verified"
    exported = export_evidence(services, MODEL, V1, tmp_path / "pack.zip")
    checked = verify_pack(exported.path)
    assert checked.ok, checked.problems
