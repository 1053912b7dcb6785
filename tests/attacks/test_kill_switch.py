"""Attacks on the kill switch: issue 20's path 4 (the row edited off), a replayed enable, an enable by someone
the policy does not let lift it, and one without a reason.

The kill switch serving obeys is the latest verified signed statement; the `kill_switches` row is a cache. Each
attack runs on a copy of the lineage world, on SQLite and on PostgreSQL, after bea (the business owner) switched
the model off with a signed statement; each must leave every answer `refer`, and be detected: the incident or the
refusal in the ledger, `govern status` exiting non-zero with the kill switch on.
"""

from __future__ import annotations

import time

import pytest

from governance import events
from governance.decisions import DecisionLog
from governance.errors import GovernanceError
from governance.ledger import Ledger, LedgerError
from governance.release.kill_switch import STATEMENT_VALIDITY, KillSwitchRefused, set_kill_switch
from governance.release.production import verified_production
from governance.release.services import Services
from governance.trust.statements import Statement, sign
from tests.attacks.support import (
    POLL_SECONDS,
    answers,
    ask,
    drop_inserts,
    incidents,
    key_of,
    rewrite_consistently,
    scoring_api,
    sql,
)
from tests.helpers import wait_until
from tests.lineage.conftest import govern
from tests.lineage.world import MODEL

pytestmark = pytest.mark.slow
ROW_OFF = "UPDATE kill_switches SET disabled = false WHERE model = :model"


def _switch_off(settings, reason: str) -> None:
    """bea's signed, authorised and ledgered disable."""
    set_kill_switch(Services(settings), MODEL, True, "bea", key_of(settings, "bea"), reason)


def _assert_held_on(settings) -> None:
    replies = answers(settings)
    assert {a["outcome"] for a in replies} == {"refer"} and all(a["safe_state"] for a in replies)
    assert verified_production(Services(settings), MODEL).kill_switch


def test_an_edited_kill_switch_row_lifts_nothing(attacked):
    """Path 4: `update kill_switches set disabled = false`, with no statement behind it."""
    _switch_off(attacked, "drill")
    sql(attacked, ROW_OFF, model=MODEL)
    _assert_held_on(attacked)
    assert incidents(attacked, "kill switch row says off")
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "KILL SWITCH ON" in status.output


def test_an_edited_kill_switch_row_is_reported_by_lineage_and_trace(attacked):
    _switch_off(attacked, "drill")
    sql(attacked, ROW_OFF, model=MODEL)
    decision = answers(attacked)[0]["decision_id"]
    assert incidents(attacked, "kill switch row says off")
    lineage = govern(attacked, "lineage", MODEL, "1")
    assert lineage.exit_code == 1 and "kill switch row says off" in lineage.output, lineage.output
    traced = govern(attacked, "trace", decision)
    assert traced.exit_code == 1 and "kill switch row says off" in traced.output, traced.output


def test_a_kill_switch_row_edited_off_under_a_running_api_keeps_every_answer_refer(attacked):
    """The same edit while the scoring API answers: answers from before and after its follower reads the row are
    all `refer`, every one logged with the kill switch on, and the disagreement is ledgered once."""
    with scoring_api(attacked) as client:
        _switch_off(attacked, "fraud investigation")
        wait_until(lambda: client.get("/healthz").json()["models"][MODEL]["safe_state"], "the follower to read it")
        time.sleep(3 * POLL_SECONDS)  # the follower holds the verified record, not only the row it read first
        sql(attacked, ROW_OFF, model=MODEL)
        log = DecisionLog.for_settings(attacked)
        deadline = time.monotonic() + 5 * POLL_SECONDS
        answered = 0
        while time.monotonic() < deadline or not incidents(attacked, "kill switch row says off"):
            [answer] = ask(client, attacked, 1)
            assert answer["outcome"] == "refer" and answer["safe_state"] is True, answer
            assert "kill switch on" in answer["safe_state_reason"] and answer["version"] is None
            assert log.get(answer["decision_id"]).kill_switch is True  # logged as answered
            answered += 1
            assert time.monotonic() < deadline + 10, "the edited row was not ledgered as an incident"
        for status in (client.get(f"/models/{MODEL}").json(), client.get("/readyz").json()["models"][MODEL]):
            assert status["safe_state"] is True and status["answering_version"] is None, status
        alive = client.get("/healthz").json()["models"][MODEL]
        assert alive["safe_state"] is True and alive["answering_version"] is None
    assert answered > 0
    assert len(incidents(attacked, "kill switch row says off", "latest verified statement says on")) == 1


def test_a_replayed_enable_does_not_lift_a_later_disable(attacked):
    """bea's earlier signed enable, appended to the ledger again after her disable, and the row edited to match."""
    _switch_off(attacked, "fraud ring")
    services = Services(attacked)
    old = services.ledger.events(events.KillSwitchOff, model=MODEL)[-1]
    services.ledger.append(
        events.KillSwitchOff(actor="bea", model=MODEL, statement=old.statement, policy=old.policy, reason="all clear")
    )
    sql(attacked, ROW_OFF, model=MODEL)
    _assert_held_on(attacked)
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "KILL SWITCH ON" in status.output, status.output


def test_an_enable_left_unused_by_a_failed_flip_does_not_lift_a_later_disable(attacked):
    """bea's enable the store recorded but no flip used (her `govern enable` failed after recording it), kept by a
    ledger writer until a person switched the model off again, then appended as her flip with the row edited to
    match: an older statement never undoes a person's later flip (before, it lifted the kill switch, status 0)."""
    _switch_off(attacked, "incident 1")
    services = Services(attacked)
    unused = sign(
        Statement.new("enable", {"model": MODEL}, "bea", valid_for=STATEMENT_VALIDITY, comment="explained"),
        key_of(attacked, "bea"),
    )
    services.statements.submit(unused, services.roster)  # what a flip that failed after this step leaves
    set_kill_switch(services, MODEL, False, "bea", key_of(attacked, "bea"), "incident 1 explained (retry)")
    set_kill_switch(services, MODEL, True, "paul", key_of(attacked, "paul"), "incident 2")
    services.ledger.append(
        events.KillSwitchOff(actor="bea", model=MODEL, statement=unused.digest, policy=services.policies.digest)
    )
    sql(attacked, ROW_OFF, model=MODEL)
    _assert_held_on(attacked)
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "was recorded before kill_switch.on" in status.output, status.output


@pytest.mark.parametrize("principal", ["dana", "paul", "ravi", "system"])
def test_an_enable_by_a_principal_the_policy_does_not_let_lift_it_is_refused_and_ledgered(attacked, principal):
    """Only the model's business owner (bea) lifts the kill switch: not a data scientist, the ML platform (who may
    switch it off), an approver, or automation, each signing with their own roster key."""
    _switch_off(attacked, "complaints spike")
    with pytest.raises(KillSwitchRefused, match=f"enable of {MODEL} by {principal} refused"):
        set_kill_switch(Services(attacked), MODEL, False, principal, key_of(attacked, principal), "looks fine to me")
    [refused] = Services(attacked).ledger.events(events.KillSwitchRefused, model=MODEL)
    assert refused.actor == principal and refused.statement_action == "enable"
    _assert_held_on(attacked)
    assert "KILL SWITCH ON" in govern(attacked, "status").output


def test_an_enable_signed_with_another_principals_key_is_refused_and_ledgered(attacked):
    """dana claims to be bea, signing with her own key: the statement store refuses it."""
    _switch_off(attacked, "complaints spike")
    with pytest.raises(KillSwitchRefused, match="does not verify with 'bea'"):
        set_kill_switch(Services(attacked), MODEL, False, "bea", key_of(attacked, "dana"), "all clear")
    refused = Services(attacked).ledger.latest(events.StatementRefused, model=MODEL)
    assert refused.actor == "bea" and refused.statement_action == "enable"
    _assert_held_on(attacked)


@pytest.mark.parametrize("reason", ["", "   "])
def test_the_kill_switch_is_not_lifted_without_a_reason(attacked, reason):
    _switch_off(attacked, "complaints spike")
    before = Ledger.for_settings(attacked).size()
    result = govern(attacked, "enable", MODEL, "--reason", reason, "--as", "bea")
    assert result.exit_code != 0 and "needs a reason" in f"{result.output}{result.exception}"
    assert Ledger.for_settings(attacked).size() == before
    _assert_held_on(attacked)


def test_a_stalled_check_of_the_signed_record_holds_the_kill_switch_on(pg_world, tmp_path, monkeypatch):
    """On PostgreSQL the insider locks the deployments table, which serving's check of the signed record reads,
    so that check waits; bea disables the model, and the insider edits the row back off. Without a completed
    check serving cannot know the record says on: once the check has stalled for RECORD_STALE_SECONDS (1 s
    here), every answer is `refer`, and /readyz says why."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    from governance.serving import champion
    from tests.lineage.conftest import copy_of

    monkeypatch.setattr(champion, "RECORD_STALE_SECONDS", 1.0)
    settings = copy_of(pg_world, tmp_path / "govern")
    with scoring_api(settings) as client:
        wait_until(lambda: client.get(f"/models/{MODEL}").json()["served_version"] == 1, "v1 to be served")
        locker = sqlalchemy.create_engine(settings.database_url, poolclass=NullPool)
        with locker.connect() as conn:
            conn.exec_driver_sql("LOCK TABLE deployments IN ACCESS EXCLUSIVE MODE")
            time.sleep(3 * POLL_SECONDS)  # the follower's next check now waits on the lock
            _switch_off(settings, "fraud investigation")
            sql(settings, ROW_OFF, model=MODEL)
            time.sleep(1.5)
            answered = ask(client, settings)
            ready = client.get("/readyz").json()["models"][MODEL]
            conn.rollback()
        locker.dispose()
    assert {(a["outcome"], a["safe_state"]) for a in answered} == {("refer", True)}, answered
    assert "has not completed a check of the signed record" in answered[0]["safe_state_reason"]
    assert ready["safe_state"] is True and ready["answering_version"] is None, ready


def test_a_forged_flip_of_the_wrong_shape_is_named_not_a_crash(attacked):
    """A well-chained `kill_switch.off` entry whose reason is a number, as no code of the project writes one:
    `govern status` and `lineage` name the entry and exit 1 (no traceback), and serving holds the kill switch
    on, as for any record it cannot read."""
    ledger = Ledger.for_settings(attacked)
    genuine = ledger.latest(events.KillSwitchOff, model=MODEL)
    entry = ledger.append_record(
        actor="bea",
        action=genuine.action,
        subject={"model": MODEL},
        digests={"statement": genuine.statement, "policy": genuine.policy},
        payload={"reason": 12345},
    )
    named = f"ledger entry {entry.seq} (kill_switch.off): field 'reason' must be"
    status = govern(attacked, "status")  # the model listed in the safe state, the entry its incident
    assert status.exit_code == 1 and f"INCIDENT: the signed record cannot be verified: {named}" in status.output
    lineage = govern(attacked, "lineage", MODEL, "1")  # `govern` prints a GovernanceError as one line, exit 1
    assert isinstance(lineage.exception, GovernanceError) and named in str(lineage.exception), lineage.exception
    assert {(a["outcome"], a["safe_state"]) for a in answers(attacked)} == {("refer", True)}


def test_a_flip_dated_by_hand_holds_the_kill_switch_on(attacked):
    """A ledger writer dates bea's last flip (her enable) back and re-hashes the chain after it (consistent: only
    a signed checkpoint sees the rewrite itself): the flip does not verify, so the kill switch counts as on."""
    ledger = Ledger.for_settings(attacked)
    flip = ledger.latest(events.KillSwitchOff, model=MODEL)
    rewrite_consistently(attacked.ledger_url, flip.seq, "ts", "2026-01-01T00:00:00.000000Z")
    assert Ledger.for_settings(attacked).misdated() == {flip.seq}
    assert {(a["outcome"], a["safe_state"]) for a in answers(attacked)} == {("refer", True)}
    status = govern(attacked, "status")
    assert status.exit_code == 1 and f"kill_switch.off #{flip.seq} does not verify" in status.output, status.output


def test_a_flip_dated_twice_is_unreadable_not_dated_twice(attacked):
    """A ledger writer gives bea's enable a second `ts`, dated back, after its real one, and re-hashes the chain:
    SQLite's derived column reads the first key (the real date, so nothing looks misdated) where a JSON reader
    would take the last. The entry is unreadable to every reader: serving holds the kill switch on, and
    `govern status` names the entry and exits 1."""
    ledger = Ledger.for_settings(attacked)
    flip = ledger.latest(events.KillSwitchOff, model=MODEL)
    backdated = b',"ts":"2026-01-01T00:00:00.000000Z"}'
    rewrite_consistently(attacked.ledger_url, flip.seq, "ts", flip.ts, spelled=lambda content: content[:-1] + backdated)
    if attacked.ledger_url.startswith("sqlite"):  # PostgreSQL's jsonb keeps the last key, as Python does
        assert Ledger.for_settings(attacked).misdated() == set()
    assert {(a["outcome"], a["safe_state"]) for a in answers(attacked)} == {("refer", True)}
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "INCIDENT: the signed record cannot be verified" in status.output, status.output
    assert f"entry {flip.seq} is unreadable" in status.output and "['ts'] appear twice" in status.output


@pytest.mark.parametrize(
    "edit",
    [
        None,
        "UPDATE signed_statements SET action = 'enable' WHERE seq = (SELECT max(seq) FROM signed_statements)",
        "UPDATE signed_statements SET model = 'other' WHERE seq = (SELECT max(seq) FROM signed_statements)",
        "DELETE FROM signed_statements WHERE seq = (SELECT max(seq) FROM signed_statements)",
    ],
    ids=["kept-out", "relabelled", "moved", "deleted"],
)
def test_a_disable_kept_out_of_the_ledger_still_holds_the_kill_switch_on(attacked, edit):
    """A database writer adds a trigger that silently drops `kill_switch.on` entries, then bea disables the model:
    her signed statement is recorded and the row set, but the ledger has no flip (she is told it was not kept).
    The writer relabels, moves or deletes her statement's row too, and edits the kill switch row back off.
    Serving holds the kill switch on all the same, and `govern status` names her disable."""
    drop_inserts(attacked, "kill_switch.on")
    with pytest.raises(LedgerError, match=r"did not keep the 1 entry\(ies\) appended after entry \d+ as written"):
        _switch_off(attacked, "drill")
    assert Services(attacked).ledger.latest(events.KillSwitchFlipped, model=MODEL).action == "kill_switch.off"
    if edit:
        sql(attacked, edit)
    sql(attacked, ROW_OFF, model=MODEL)
    _assert_held_on(attacked)
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "bea's signed disable" in status.output, status.output
    assert "the ledger has no kill_switch.on for it" in status.output, status.output


def test_a_forged_refusal_does_not_cancel_a_disable_kept_out_of_the_ledger(attacked):
    """As above, and the writer appends a `kill_switch.refused` entry for bea's disable, as if Cedar had refused
    it: Cedar, asked now, lets bea disable, so her disable still holds the kill switch on."""
    drop_inserts(attacked, "kill_switch.on")
    with pytest.raises(LedgerError, match="a trigger or rule on ledger_entries"):
        _switch_off(attacked, "drill")
    services = Services(attacked)
    disable = services.statements.find(action="disable", principal="bea")[0]
    services.ledger.append(
        events.KillSwitchRefused(
            actor="bea", model=MODEL, statement=disable.digest, policy="0" * 64, statement_action="disable"
        )
    )
    sql(attacked, ROW_OFF, model=MODEL)
    _assert_held_on(attacked)
