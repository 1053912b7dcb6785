"""The event contract: one typed event per governance fact, declared once, refused when malformed; operational
state outlives retention; the approvals sensor reads events after a ledger cursor."""

from __future__ import annotations

import io
import json
import re
import tokenize
from datetime import timedelta

import dagster as dg
import pytest
from typer.testing import CliRunner

from governance import events
from governance.config import Retention
from governance.events import EventError
from governance.ledger import Ledger
from governance.lineage.retention import apply_retention
from governance.release.approvals import decide
from governance.release.services import Services
from governance.timestamps import utc_now, utc_timestamp
from governance.trust.demo import demo_principals
from governance.trust.keys import load_private_key
from programs.cli import app
from resources import governance_resources
from sensors.approvals import APPROVALS
from tests.daemon_runs import create_requested_run
from tests.helpers import REPO, SMALL_CONFIG, Lifecycle, travel

MODEL = "credit_scoring"
PRODUCT = ("governance", "governance_assets", "jobs", "sensors", "resources", "programs")


def test_each_action_is_spelled_in_exactly_one_module():
    """No string or comment outside governance/events.py spells an action (messages and docstrings name it through
    its type), so a grep for one finds where it is declared; code still reads like `gate.decision` (an event's
    `decision` field) where it is not inside a string or a comment."""
    declared = list(events._BY_ACTION)
    assert len(declared) >= 30 and len(set(declared)) == len(declared)
    spelling = re.compile(rf"(?<![\w.])({'|'.join(re.escape(a) for a in declared)})(?![\w])")
    found = {}
    for package in (*PRODUCT, "bench"):
        for path in (REPO / package).rglob("*.py"):
            for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
                if token.type in (tokenize.STRING, tokenize.COMMENT):
                    for action in spelling.findall(token.string):
                        found.setdefault(action, set()).add(str(path.relative_to(REPO)))
    assert {a: sorted(p) for a, p in found.items() if p != {"governance/events.py"}} == {}
    families = {"deploy", "rollback"}  # move steps are declared as (kind, step) pairs
    moves = {a for a in declared if a.split(".")[0] in families}
    assert moves == {f"{k}.{s}" for k in families for s in ("started", "completed", "aborted")}


def test_the_product_appends_typed_events_only():
    """`Ledger.append_record(s)` takes raw entry fields unchecked against any event type: the storage layer's door
    for its own tests and benchmarks. No product module may use it, so every entry the project writes is checked
    against its declared type when it is appended."""
    raw = re.compile(r"\.append_records?\(")
    users = sorted(
        str(path.relative_to(REPO))
        for package in PRODUCT
        for path in (REPO / package).rglob("*.py")
        if raw.search(path.read_text())
    )
    assert users == []


def _requested(**overrides) -> events.ApprovalRequested:
    fields = {
        "actor": "system:approval_request",
        "model": MODEL,
        "version": "credit_scoring-v1",
        "evidence_pack": "a" * 64,
        "artifact": "b" * 64,
        "policy": "c" * 64,
        "requested_by": ("dana",),
    }
    return events.ApprovalRequested(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pack_path": "/tmp/pack"}, "undeclared field(s) ['pack_path']"),
        ({"policy": None}, "field 'policy' must be str"),
        ({"requested_by": ["dana"]}, "field 'requested_by' must be tuple"),
        ({"version": 1}, "field 'version' must be str"),
    ],
)
def test_a_malformed_event_is_refused_naming_event_and_field_and_nothing_is_written(tmp_path, change, message):
    ledger = Ledger(f"sqlite:///{tmp_path / 'governance.db'}")
    ledger.append(_requested())
    with pytest.raises(EventError) as refused:
        ledger.append(_requested(**change))
    assert "ApprovalRequested (approval.requested)" in str(refused.value) and message in str(refused.value)
    assert ledger.size() == 1


def test_a_missing_field_is_refused():
    with pytest.raises(EventError, match=r"ApprovalRequested \(approval.requested\): field 'policy' is missing"):
        events.ApprovalRequested(
            actor="x", model=MODEL, version="credit_scoring-v1", evidence_pack="a" * 64, artifact="b" * 64
        )


def test_an_event_reads_back_as_written_and_facts_survive_retention(tmp_path, monkeypatch):
    ledger = Ledger(f"sqlite:///{tmp_path / 'governance.db'}")
    written = _requested()
    entry = ledger.append(written)
    assert entry.facts == {"requested_by": ["dana"]} and entry.payload == {}
    cutoff = utc_now() + timedelta(seconds=1)
    ledger.expire_payloads(cutoff)
    travel(monkeypatch, timedelta(days=1, seconds=2))
    ledger.append(
        events.RetentionApplied(actor="system:retention", model=MODEL, ledger_payloads_before=utc_timestamp(cutoff))
    )
    read = ledger.latest(events.ApprovalRequested, model=MODEL)
    assert read == written and read.seq == entry.seq and read.entry_hash == entry.entry_hash and read.expired
    assert ledger.verify().ok


# --- through the real graph -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def life(tmp_path_factory) -> Lifecycle:
    life = Lifecycle(tmp_path_factory.mktemp("events") / "govern", SMALL_CONFIG)
    demo_principals(life.settings)
    key, result = life.candidate(requested_by="dana")
    assert key == "credit_scoring-v1" and result.success
    return life


def _key(life: Lifecycle, name: str):
    return load_private_key(life.settings.keys_dir / f"{name}.key")


def _govern(life: Lifecycle, *args: str):
    base = ["--home", str(life.settings.home), "--config", str(life.settings.config_path)]
    return CliRunner(env={"GOVERN_POLICIES": str(life.settings.policies_dir)}).invoke(app, [*base, *args])


def _release(life: Lifecycle, version: str) -> dg.ExecuteInProcessResult:
    job = life.defs.resolve_job_def(f"{MODEL}_release")
    return job.execute_in_process(instance=life.instance, partition_key=version, raise_on_error=False)


@pytest.mark.slow
def test_the_approvals_sensor_launches_once_when_a_tick_falls_between_statement_and_grant(life, monkeypatch):
    """`decide` records the signed statement before it ledgers the grant; a tick in that gap must not lose it."""
    sensor = life.defs.resolve_sensor_def(APPROVALS)
    resources = governance_resources(life.settings)
    ticks: list[dg.SensorResult] = []
    appending = Ledger.append

    def tick_in_the_gap(ledger: Ledger, event: events.Event):
        if isinstance(event, events.ApprovalGranted) and not ticks:
            with dg.build_sensor_context(instance=life.instance, resources=resources) as context:
                ticks.append(sensor(context))
        return appending(ledger, event)

    monkeypatch.setattr(Ledger, "append", tick_in_the_gap)
    decide(Services(life.settings), MODEL, "credit_scoring-v1", "approve", "ravi", _key(life, "ravi"))
    monkeypatch.undo()
    (in_the_gap,) = ticks
    assert not in_the_gap.run_requests
    with dg.build_sensor_context(instance=life.instance, cursor=in_the_gap.cursor, resources=resources) as context:
        after = sensor(context)
    (request,) = after.run_requests
    assert request.partition_key == "credit_scoring-v1"
    create_requested_run(life.defs, life.instance, request, dg.DagsterRunStatus.NOT_STARTED)  # the daemon's run
    with dg.build_sensor_context(instance=life.instance, cursor=after.cursor, resources=resources) as context:
        again = sensor(context)
    assert not again.run_requests
    assert _release(life, "credit_scoring-v1").success


@pytest.mark.slow
def test_status_approve_deploy_rollback_and_lineage_work_after_the_shortest_retention(life, monkeypatch):
    """Retention at its shortest (1 day, applied two days later) removes every payload written so far."""
    services = Services(life.settings)
    if services.registry.champion(MODEL) != 1:
        decide(services, MODEL, "credit_scoring-v1", "approve", "ravi", _key(life, "ravi"))
        assert _release(life, "credit_scoring-v1").success
    key, result = life.candidate(requested_by="dana")
    assert key == "credit_scoring-v2" and result.success
    shortest = Retention(decision_features_days=1, decision_log_days=1, ledger_payload_days=1)
    travel(monkeypatch, timedelta(days=2))
    run = apply_retention(services, shortest, [MODEL])
    assert run.ledger_ok and run.ledger_payloads_expired > 20
    assert all(e.payload is None for e in services.ledger.entries(model=MODEL) if e.seq < run_seq(services))

    status = _govern(life, "status")
    assert status.exit_code == 0 and "credit_scoring-v2 awaits approval" in status.output, status.output
    for version in json.loads(_govern(life, "status", "--json").output)[0]["versions"]:  # forgotten, and said
        assert "removed from ledger entry" in version["gate"]["reasons"][0], version
    decide(services, MODEL, "credit_scoring-v2", "approve", "rhea", _key(life, "rhea"))
    assert _release(life, "credit_scoring-v2").success and services.registry.champion(MODEL) == 2
    rolled = _govern(life, "rollback", MODEL, "--to", "1", "--reason", "after retention", "--as", "paul")
    assert rolled.exit_code == 0, rolled.output
    assert services.registry.champion(MODEL) == 1
    for version in ("1", "2"):
        lineage = _govern(life, "lineage", MODEL, version)
        assert lineage.exit_code == 0 and "findings" in lineage.output, lineage.output
    assert _govern(life, "ledger", "verify").exit_code == 0


def run_seq(services: Services) -> int:
    return services.ledger.latest(events.RetentionApplied, model=MODEL).seq
