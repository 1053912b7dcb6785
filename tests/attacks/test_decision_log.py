"""Attacks on the decision log: the decision log sealed into the ledger, against an insider who can write the
decision log's database (and the ledger's: forged seals and retention runs).

Each test runs on a copy of the lineage world (decisions served by the real scoring API under v2, after the
signed rollback to v1, and in the safe state), on SQLite and on PostgreSQL. A deleted, edited or inserted
decision in a sealed range is named by `govern decisions verify` and `govern trace`, which exit non-zero and
ledger the incident once (`govern status` shows it); retention within the configured periods is not tampering;
decisions served since the last seal are not yet sealed, never verified.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from sqlalchemy.pool import NullPool

from governance import events
from governance.config import Retention
from governance.decisions import DecisionLog
from governance.errors import GovernanceError
from governance.lineage.decision_seals import ACTOR, decision_digest, seal_decisions, seal_root
from governance.lineage.retention import apply_retention
from governance.monitoring import lease
from governance.release.services import Services
from governance.serving.app import create_app
from governance.timestamps import parse_utc, utc_now, utc_timestamp
from tests.attacks.support import answers
from tests.helpers import travel
from tests.lineage.conftest import govern
from tests.lineage.world import MODEL
from tests.serving.conftest import bearer

pytestmark = pytest.mark.slow


def _sql(settings, statement: str, url: str | None = None, **params) -> None:
    """What an insider with the decision log's (or the governance database's) credentials runs, outside the
    project's code."""
    engine = sqlalchemy.create_engine(url or settings.decisions_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(statement), params)
    engine.dispose()


def _seal(settings) -> list[events.DecisionsSealed]:
    """Seal everything logged so far (the guard seals what was logged over a minute ago)."""
    log = DecisionLog.for_settings(settings)
    return seal_decisions(Services(settings), log, utc_timestamp(utc_now() + timedelta(seconds=1)))


def _verify(settings) -> tuple[int, dict]:
    result = govern(settings, "decisions", "verify", "--json")
    [model] = [m for m in json.loads(result.output)["models"] if m["model"] == MODEL]
    return result.exit_code, model


def _incidents(settings, word: str = "") -> list[str]:
    """The incidents the decision log's seals ledgered, naming `word`."""
    found = Services(settings).ledger.events(events.ProductionIncident, model=MODEL)
    return [i.description for i in found if i.actor == ACTOR and word in i.description]


def test_served_decisions_are_not_yet_sealed_until_sealed_then_verify(any_world, attacked):
    served = DecisionLog.for_settings(attacked).count(MODEL)
    decision = any_world.decisions["after_rollback"][0]["decision_id"]
    assert _verify(attacked) == (0, _model(unsealed=served))
    traced = govern(attacked, "trace", decision)
    assert traced.exit_code == 0 and "seal: not yet sealed" in traced.output, traced.output

    [seal] = _seal(attacked)
    assert (seal.first_seq, seal.count, len(seal.leaves)) == (1, served, served)
    assert _verify(attacked) == (0, _model(seals=1, verified=served))
    traced = json.loads(govern(attacked, "trace", decision, "--json").output)["seal"]
    entry = Services(attacked).ledger.latest(events.DecisionsSealed, model=MODEL)
    assert (traced["status"], traced["ledger_entry"], traced["range"]) == ("sealed", entry.seq, [1, seal.last_seq])

    answers(attacked)  # 20 more, just now: the guard's sealing leaves them for its next minute
    assert seal_decisions(Services(attacked), DecisionLog.for_settings(attacked)) == []
    assert _verify(attacked) == (0, _model(seals=1, verified=served, unsealed=20))
    assert not _incidents(attacked)


def _model(seals=0, verified=0, expired=0, unsealed=0, findings=()) -> dict:
    return {
        "model": MODEL,
        "seals": seals,
        "verified": verified,
        "expired": expired,
        "unsealed": unsealed,
        "findings": list(findings),
    }


ATTACKS = {
    "delete": ("DELETE FROM decisions WHERE decision_id = :id", "deleted outside retention"),
    "edit": ("UPDATE decisions SET outcome = 'approve', score = 0.01 WHERE decision_id = :id", "its row was edited"),
    "insert": (
        "INSERT INTO decisions (seq, decision_id, ts, model, version, input_digest, score, outcome, reasons, "
        "kill_switch) SELECT :gap, 'forged-decision', ts, model, version, input_digest, score, outcome, "
        "reasons, kill_switch FROM decisions WHERE decision_id = :id",
        "but is not in the seal: inserted",
    ),
    "drop inputs": (
        "UPDATE decisions SET features = NULL, protected = NULL WHERE decision_id = :id",
        "its inputs are gone, but no retention run dropped the inputs of decisions that recent",
    ),
    "edit inputs": (
        "UPDATE decisions SET features = replace(features, '\"', '\" ') WHERE decision_id = :id",
        "its inputs no longer have its input digest",
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_sealed_decision_deleted_edited_or_inserted_is_named_by_verify_and_trace_and_ledgered_once(
    any_world, attacked, attack
):
    # A PostgreSQL sequence skips the numbers of inserts that were rolled back: the log has a gap the seal spans.
    _sql(attacked, "UPDATE decisions SET seq = seq + 1 WHERE seq = (SELECT max(seq) FROM decisions)")
    [seal] = _seal(attacked)
    decision = any_world.decisions["before_rollback"][1]["decision_id"]
    statement, finding = ATTACKS[attack]
    _sql(attacked, statement, id=decision, gap=seal.last_seq - 1)
    named = "forged-decision" if attack == "insert" else decision

    console = TestClient(create_app(attacked), raise_server_exceptions=False)
    page = console.get(f"/console/decisions/{named}", headers=bearer(attacked))  # production needs a token
    assert finding in page.text and _incidents(attacked, named) == []  # a console GET reports it, writes nothing
    code, model = _verify(attacked)
    [found] = model["findings"]
    assert code == 1 and named in found and finding in found and f"ledger entry {seal.seq}" in found
    traced = govern(attacked, "trace", named)
    assert traced.exit_code != 0 and finding in f"{traced.output}{traced.exception}"
    assert _verify(attacked)[0] == 1
    assert _incidents(attacked, named) == [found]  # verify twice and trace: one incident
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "INCIDENT" in status.output, status.output


def test_retention_within_the_configured_periods_is_not_tampering(any_world, attacked, monkeypatch):
    services, log = Services(attacked), DecisionLog.for_settings(attacked)
    served = log.count(MODEL)
    _seal(attacked)
    travel(monkeypatch, timedelta(days=2))
    apply_retention(services, Retention(decision_features_days=1, decision_log_days=3653, ledger_payload_days=1), [])
    assert _verify(attacked) == (0, _model(seals=1, verified=served))  # inputs expired, the rest still sealed
    travel(monkeypatch, timedelta(days=3))
    run = apply_retention(services, Retention(decision_features_days=1, decision_log_days=2, ledger_payload_days=1), [])
    assert run.decisions_deleted == {MODEL: served}
    assert _verify(attacked) == (0, _model(seals=1, expired=served))
    decision = any_world.decisions["after_rollback"][0]["decision_id"]
    traced = govern(attacked, "trace", decision)
    assert traced.exit_code != 0 and "was deleted by retention" in f"{traced.output}{traced.exception}"
    assert not _incidents(attacked)


def test_rows_deleted_outside_retention_are_not_explained_by_a_forged_retention_run(attacked):
    [seal] = _seal(attacked)
    _sql(attacked, "DELETE FROM decisions")
    Services(attacked).ledger.append(
        events.RetentionApplied(
            actor="system:retention", model=MODEL, ledger_payloads_before=seal.last_ts, decisions_before=utc_timestamp()
        )
    )  # a cut-off at the run, closer than the shortest retention period
    code, model = _verify(attacked)
    assert code == 1 and len(model["findings"]) == seal.count and model["expired"] == 0


@pytest.mark.parametrize(
    "first, problem",
    [(5, "leaves a gap: seq 1..4 are in no seal"), (1, "overlaps the previous seal, which ends at seq")],
    ids=["gap", "overlap"],
)
def test_a_seal_that_does_not_abut_the_previous_one_is_named_with_its_range(attacked, first, problem):
    if first == 1:
        _seal(attacked)
    forged = events.DecisionsSealed(
        actor=ACTOR,
        model=MODEL,
        root="a" * 64,
        first_seq=first,
        last_seq=first,
        count=1,
        last_ts=utc_timestamp(),
        leaves=([first, "forged-decision", "0" * 64],),
    )
    entry = Services(attacked).ledger.append(forged)
    code, model = _verify(attacked)
    assert code == 1 and model["findings"][-1].startswith(
        f"the seal in ledger entry {entry.seq} over seq {first}..{first}"
    )
    assert problem in model["findings"][-1]


def test_a_decision_dated_in_the_future_is_sealed_as_it_stands_and_named(attacked):
    served = DecisionLog.for_settings(attacked).count(MODEL)
    _sql(attacked, "UPDATE decisions SET ts = '9999-12-31T00:00:00.000000Z' WHERE seq = 3")
    [seal] = _seal(attacked)  # the decisions after it are sealed too: editing them later is detected
    assert seal.count == served
    code, model = _verify(attacked)
    [found] = model["findings"]
    assert code == 1 and "(seq 3)" in found and "is dated 9999-12-31T00:00:00.000000Z, in the future" in found
    _sql(attacked, "UPDATE decisions SET ts = :ts WHERE seq = 3", ts=utc_timestamp())  # set back to a plausible time
    assert "its row was edited" in _verify(attacked)[1]["findings"][0]


def test_a_forged_retention_run_does_not_explain_one_decision_deleted_from_a_range_left_in_the_log(
    any_world, attacked, monkeypatch
):
    [seal] = _seal(attacked)
    decision = any_world.decisions["before_rollback"][1]["decision_id"]
    _sql(attacked, "DELETE FROM decisions WHERE decision_id = :id", id=decision)
    travel(monkeypatch, timedelta(days=3))
    Services(attacked).ledger.append(
        events.RetentionApplied(
            actor="system:retention",
            model=MODEL,
            ledger_payloads_before=seal.last_ts,
            decisions_before=utc_timestamp(utc_now() + timedelta(days=1)),  # this module's clock did not travel
        )
    )  # credible: a day past the seal, two before the run
    code, model = _verify(attacked)
    [found] = model["findings"]
    assert code == 1 and decision in found and "deleted outside retention" in found and model["expired"] == 0
    traced = govern(attacked, "trace", decision)
    assert traced.exit_code != 0 and "deleted outside retention" in f"{traced.output}{traced.exception}"


def test_trace_names_a_sealed_decision_moved_to_another_seq_and_edited(any_world, attacked):
    _seal(attacked)
    decision = any_world.decisions["before_rollback"][1]["decision_id"]
    _sql(
        attacked,
        "UPDATE decisions SET seq = 1000000, outcome = 'approve', score = 0.01 WHERE decision_id = :id",
        id=decision,
    )
    traced = govern(attacked, "trace", decision)
    output = f"{traced.output}{traced.exception}"
    assert traced.exit_code != 0 and "is at seq 1000000" in output and "its row was moved" in output, output


@pytest.mark.parametrize(
    "first, leaves",
    [(10**6, ([10**6, "forged-decision", "zz"],)), ("a", (["a", "forged-decision", "0" * 64],))],
    ids=["digest", "seq"],
)
def test_a_seal_that_cannot_be_read_is_named_and_the_other_seals_still_checked(any_world, attacked, first, leaves):
    _seal(attacked)
    forged = events.DecisionsSealed._unchecked(  # as an insider appending to the ledger writes it: unchecked
        actor=ACTOR, model=MODEL, root="a" * 64, first_seq=first, last_seq=first, count=1, last_ts="x", leaves=leaves
    )
    entry = Services(attacked).ledger.append(forged)
    decision = any_world.decisions["before_rollback"][1]["decision_id"]
    _sql(attacked, ATTACKS["edit"][0], id=decision)
    code, model = _verify(attacked)
    edited, unread = model["findings"]
    assert code == 1 and f"ledger entry {entry.seq} cannot be read" in unread and decision in edited


def test_decisions_left_unsealed_for_over_an_hour_are_named(attacked, monkeypatch):
    served = DecisionLog.for_settings(attacked).count(MODEL)
    travel(monkeypatch, timedelta(hours=2))
    code, model = _verify(attacked)
    assert code == 1 and model["unsealed"] == served and "sealing has stalled" in model["findings"][0]


def test_a_squatted_sealing_lease_is_taken_over_and_a_busy_one_is_an_error(attacked, monkeypatch, caplog):
    squat = "INSERT INTO monitoring_leases (model, holder, expires_at) VALUES ('decision-log:seal', 'guard:1', :at)"
    _sql(attacked, squat, url=attacked.ledger_url, at="9999-12-31T00:00:00.000000Z")
    sealed = govern(attacked, "decisions", "seal")
    assert sealed.exit_code == 0 and "sealed" in sealed.output, sealed.output
    assert "took over decision-log:seal's lease from guard:1" in caplog.text

    _sql(attacked, squat, url=attacked.ledger_url, at=utc_timestamp(utc_now() + timedelta(seconds=60)))
    monkeypatch.setattr(lease, "WAIT_SECONDS", 0.5)
    busy = govern(attacked, "decisions", "seal")
    assert busy.exit_code == 1 and "error: another sealer holds the decision log's sealing lease" in busy.output


def test_a_decision_row_of_the_wrong_shape_is_named_not_a_crash(any_world, attacked):
    """A decision's reasons edited into an object no code of the project writes: `govern trace` names
    the decision and its row and exits 1 (no traceback)."""
    decision = any_world.decisions["after_rollback"][0]["decision_id"]
    _sql(attacked, "UPDATE decisions SET reasons = :reasons WHERE decision_id = :id", reasons='{"x": 1}', id=decision)
    traced = govern(attacked, "trace", decision)
    assert isinstance(traced.exception, GovernanceError), traced.exception  # `govern` prints it as one line
    assert f"decision {decision} (row " in str(traced.exception) and "not a list of reason codes" in str(
        traced.exception
    )


def _retention_after_a_forged_seal(services: Services, rows: list, last_ts: str) -> dict[str, int]:
    """A ledger writer seals `rows` with their real leaves and root, its newest dated `last_ts`; then retention
    runs with a two-day `decision_log_days`: what it deleted."""
    leaves = tuple([d.seq, d.decision_id, decision_digest(d)] for d in rows)
    services.ledger.append(
        events.DecisionsSealed(
            actor=ACTOR,
            model=MODEL,
            root=seal_root(leaves),
            first_seq=rows[0].seq,
            last_seq=rows[-1].seq,
            count=len(rows),
            last_ts=last_ts,
            leaves=leaves,
        )
    )
    return apply_retention(
        services, Retention(decision_features_days=1, decision_log_days=2, ledger_payload_days=1), []
    ).decisions_deleted


def test_a_forged_seal_dated_old_over_recent_decisions_deletes_none_of_them(attacked, monkeypatch):
    """A ledger writer seals the decisions served five days on with a well-formed seal (their real leaves and
    root) dated as old as the last real one, hoping retention deletes them as past `decision_log_days`:
    retention deletes the real seal's range, and nothing the forged seal covers (its rows were made after the
    cut-off)."""
    services, log = Services(attacked), DecisionLog.for_settings(attacked)
    [sealed] = _seal(attacked)
    travel(monkeypatch, timedelta(days=5))
    answers(attacked)  # decisions served five days on
    recent = log.between(MODEL, sealed.last_seq + 1, 10**9)
    assert _retention_after_a_forged_seal(services, recent, sealed.last_ts) == {MODEL: sealed.count}
    assert log.count(MODEL) == len(recent) > 0


@pytest.mark.parametrize("moved", [timedelta(days=1), -timedelta(days=1)], ids=["after-the-seal", "before-it"])
def test_decisions_redated_past_retention_under_a_forged_seal_are_kept(attacked, monkeypatch, moved):
    """Five days on, before the guard seals them, a writer of both databases dates the new decisions back past the
    two-day `decision_log_days` and seals them with their real leaves. The ledger dated that seal today: retention
    deletes the real seal's range only. Dated before the decisions the real seal holds, verify names each."""
    services, log = Services(attacked), DecisionLog.for_settings(attacked)
    [sealed] = _seal(attacked)
    travel(monkeypatch, timedelta(days=5))
    answers(attacked)
    redated_to = utc_timestamp(parse_utc(sealed.last_ts) + moved)
    _sql(attacked, "UPDATE decisions SET ts = :ts WHERE seq > :seq", ts=redated_to, seq=sealed.last_seq)
    redated = log.between(MODEL, sealed.last_seq + 1, 10**9)
    assert _retention_after_a_forged_seal(services, redated, redated_to) == {MODEL: sealed.count}
    assert log.count(MODEL) == len(redated) > 0
    code, checked = _verify(attacked)
    named = [f for f in checked["findings"] if "a date set by hand before it was sealed" in f]
    assert len(named) == (len(redated) if moved < timedelta(0) else 0), checked["findings"]
    assert code == (1 if named else 0)
