"""The statement store on a real ledger: what it accepts, what it refuses and why, on SQLite and PostgreSQL.
Forged, replayed and otherwise refused statements submitted to a real state's store are in the attack suite
(tests/attacks/test_statements.py)."""

from __future__ import annotations

import base64
import multiprocessing
from dataclasses import replace
from datetime import timedelta

import pytest

from governance import events
from governance.ledger import Ledger
from governance.timestamps import utc_now
from governance.trust.keys import generate_key_pair
from governance.trust.roster import Principal, Roster
from governance.trust.statements import SignedStatement, sign
from governance.trust.store import StatementRefused, StatementStore
from tests.trust.conftest import SUBJECT, approval


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, settings):
    return settings.ledger_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture
def ledger(url) -> Ledger:
    return Ledger(url)


@pytest.fixture
def store(url, ledger) -> StatementStore:
    return StatementStore(url, ledger)


def only_event(ledger: Ledger, kind: type[events.E]) -> events.E:
    found = ledger.events(kind)
    assert len(found) == 1, found
    return found[0]


def test_an_authentic_statement_is_recorded_found_and_ledgered(cast, store, ledger):
    older = store.submit(approval(cast, version="credit_scoring-v2"), cast.roster)
    signed = approval(cast)
    recorded = store.submit(signed, cast.roster)
    assert recorded.signed == signed and recorded.digest == signed.digest
    assert recorded.roster_digest == cast.roster.digest
    entry = ledger.latest(events.StatementRecorded)
    assert recorded.ledger_entry_hash == entry.entry_hash
    assert (entry.actor, entry.model, entry.version, entry.evidence_digest) == (
        "ravi",
        SUBJECT["model"],
        SUBJECT["version"],
        SUBJECT["evidence_digest"],
    )
    assert (entry.rule, entry.until) == (None, None)
    assert (entry.statement, entry.roster) == (signed.digest, cast.roster.digest)
    assert (entry.statement_action, entry.roster_version) == ("approve", 1)
    assert [r.digest for r in store.find(action="approve", model="credit_scoring")] == [signed.digest, older.digest]
    assert [r.digest for r in store.find(version="credit_scoring-v3")] == [signed.digest]
    assert store.find(action="reject") == [] and store.find(principal="rhea") == []


def test_find_active_at_drops_expired_statements(cast, store):
    now = utc_now()
    store.submit(approval(cast, valid_for=timedelta(minutes=10), now=now), cast.roster, now=now)
    assert len(store.find(active_at=now + timedelta(minutes=9))) == 1
    assert store.find(active_at=now + timedelta(minutes=10)) == []


def test_reverify_accepts_the_recorded_statement_again_and_again(cast, store, ledger):
    signed = approval(cast)
    recorded = store.submit(signed, cast.roster)
    assert store.reverify(signed, cast.roster) == recorded
    assert store.reverify(SignedStatement.from_json(signed.to_json()), cast.roster) == recorded
    assert ledger.events(events.StatementRefused) == []


def without(roster: Roster, name: str, tmp_path) -> Roster:
    return Roster.write(
        tmp_path / "next.yaml",
        version=roster.version + 1,
        principals=[p for n, p in roster.principals.items() if n != name],
    )


def rotated(roster: Roster, name: str, tmp_path) -> Roster:
    fresh = Principal(name, roster.principal(name).roles, generate_key_pair()[1])
    return Roster.write(
        tmp_path / "next.yaml",
        version=roster.version + 1,
        principals=[fresh if n == name else p for n, p in roster.principals.items()],
    )


def test_reverify_refuses_what_no_longer_holds(cast, store, ledger, tmp_path):
    now = utc_now()
    signed = approval(cast, valid_for=timedelta(hours=1), now=now)
    store.submit(signed, cast.roster, now=now)
    checks = [
        (lambda: store.reverify(signed, cast.roster, now + timedelta(hours=1)), "expired at"),
        (
            lambda: store.reverify(signed, without(cast.roster, "ravi", tmp_path), now),
            "principal 'ravi' is not in the roster (version 2",
        ),
        (lambda: store.reverify(signed, rotated(cast.roster, "ravi", tmp_path), now), "does not verify"),
        (lambda: store.reverify(approval(cast), cast.roster, now), "not recorded in the statement store"),
        (
            lambda: store.reverify(
                sign(replace(signed.statement, comment="edited"), cast.keys["ravi"]), cast.roster, now
            ),
            "differs from the statement recorded",
        ),
    ]
    for check, reason in checks:
        with pytest.raises(StatementRefused, match=reason.replace("(", r"\(")):
            check()
    reasons = [refused.reason for refused in ledger.events(events.StatementRefused)]
    assert len(reasons) == len(checks)
    assert all(reason in logged for (_, reason), logged in zip(checks, reasons))


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_a_statement_whose_ledger_entry_never_landed_is_not_trusted(cast, store):
    """A crash between committing the row and appending its ledger entry leaves the hash empty."""
    from sqlalchemy import update

    from governance.trust.store import _statements

    signed = approval(cast)
    store.submit(signed, cast.roster)
    with store.engine.begin() as conn:
        conn.execute(update(_statements).values(ledger_entry_hash=None))
    with pytest.raises(StatementRefused, match="recorded without its ledger entry"):
        store.reverify(signed, cast.roster)
    with pytest.raises(StatementRefused, match="replay: this statement was already recorded"):
        store.submit(signed, cast.roster)


def _submit_in_child(url: str, roster_path: str, statement_json: str, barrier, results) -> None:
    store = StatementStore(url, Ledger(url))
    signed = SignedStatement.from_json(statement_json)
    roster = Roster.load(roster_path)
    barrier.wait()
    try:
        store.submit(signed, roster)
        results.put("accepted")
    except StatementRefused as refusal:
        results.put(refusal.reason)


def test_two_processes_submitting_the_same_nonce_at_once_exactly_one_wins(cast, url, store, ledger):
    signed = approval(cast)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    args = (url, str(cast.roster.path), signed.to_json(), barrier, results)
    children = [context.Process(target=_submit_in_child, args=args) for _ in range(2)]
    for child in children:
        child.start()
    outcomes = sorted(results.get(timeout=60) for _ in children)
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert outcomes[0] == "accepted" and outcomes[1].startswith("replay:")
    assert len(store.find()) == 1
    assert len(ledger.events(events.StatementRecorded)) == 1
    assert len(ledger.events(events.StatementRefused)) == 1
    assert ledger.verify().ok


def test_no_private_key_material_reaches_the_database_or_the_roster(cast, settings):
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    store = StatementStore(settings.ledger_url, Ledger(settings.ledger_url))
    store.submit(approval(cast), cast.roster)
    with pytest.raises(StatementRefused):
        store.submit(approval(cast, signer="rhea"), cast.roster)
    stored = b"".join(p.read_bytes() for p in settings.home.glob("governance.db*"))
    stored += cast.roster.path.read_bytes()
    for name, key in cast.keys.items():
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        pem_body = "".join(
            key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode().splitlines()[1:-1]
        )
        for secret in (raw, raw.hex().encode(), base64.b64encode(raw), pem_body.encode()):
            assert secret not in stored, name
    assert b"PRIVATE KEY" not in stored
