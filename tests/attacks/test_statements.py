"""Attacks on the signed statements behind approvals: a key not in the roster, a signature by someone else's key, a
statement the policy refuses, a forged row written straight into the statement store, an approval of another
version re-labelled, a replayed statement or nonce, and a release with no approval at all (Dagster lets anyone
report a materialization).

The release job deploys a version only on a valid approval, re-verified where it is used: its signature with the
roster key of the moment, its evidence pack, Cedar's decision. Each attack runs on a copy of the lineage world with
v3 (requested by dana) awaiting approval, or of the lineage world itself, on SQLite and on PostgreSQL; each must
deploy nothing, leave the champion, and leave its reason in the ledger (`release.refused`, `statement.refused`,
`approval.refused`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import dagster as dg
import pytest
from sqlalchemy import insert

from governance import events
from governance.ledger import Ledger
from governance.release.approvals import ApprovalRefused, decide
from governance.release.production import verified_production
from governance.release.services import Services
from governance.timestamps import MAX_CLOCK_SKEW, utc_now
from governance.trust import store as store_module
from governance.trust.demo import DEMO_CAST
from governance.trust.keys import generate_key_pair
from governance.trust.statements import SignedStatement, Statement, sign
from governance.trust.store import StatementRefused, StatementStore, statement_row
from tests.attacks.support import V3, Pending, key_of
from tests.lineage.conftest import govern
from tests.lineage.world import MODEL
from tests.trust.conftest import SUBJECT, Cast, approval

pytestmark = pytest.mark.slow


def _assert_nothing_deployed(pending: Pending, reason: str) -> None:
    services = pending.services
    assert services.registry.champion(MODEL) == 1
    assert [d for d in services.control.deployments(MODEL) if d.version == 3] == []
    assert verified_production(services, MODEL).champion == 1
    assert reason in pending.release_refusal(), pending.release_refusal()


def _insert_raw(services: Services, signed: SignedStatement, version: str | None = None) -> None:
    """An attacker with write access to the database, bypassing `submit` (and relabelling the version column)."""
    row = statement_row(signed, services.roster, signed.statement.issued_at)
    row["version"] = version or row["version"]
    with services.statements.engine.begin() as conn:
        conn.execute(insert(store_module._statements).values(**row, ledger_entry_hash="0" * 64))


# --- the release, without a valid approval ------------------------------------------------------------------------


def test_no_approval_deploys_nothing(pending):
    assert not pending.release(V3).success
    _assert_nothing_deployed(pending, "no unexpired approve statement")


def test_a_reported_materialization_of_approved_release_deploys_nothing(pending):
    """Anyone with the UI reports `approved_release` for v3 (naming an approver), then runs the deployment step."""
    pending.life.instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=dg.AssetKey([MODEL, "approved_release"]), partition=V3, metadata={"approver": "ravi"}
        )
    )
    result = pending.release(V3, selection=[dg.AssetKey([MODEL, "production_deployment"])])
    assert not result.success
    assert pending.services.ledger.latest(events.ReleaseRefused, model=MODEL).actor == "system:production_deployment"
    _assert_nothing_deployed(pending, "no unexpired approve statement")


def test_approvals_refused_at_signing(pending):
    """A requester approving her own version, someone the policy does not let approve, a forgery with another
    approver's key, and a principal the roster does not know: each refused when signed, and the release they
    leave behind deploys nothing."""
    settings = pending.settings
    cases = {  # principal: (their key, expected reason)
        "dana": ("dana", "Whoever trained or requested a version may not approve it"),
        "bea": ("bea", "no rule permits bea"),
        "ravi": ("rhea", "signature does not verify"),  # signed with someone else's key: a forgery
        "mallory": (None, "not in the roster"),
    }
    for principal, (key_name, reason) in cases.items():
        key = key_of(settings, key_name) if key_name else generate_key_pair()[0]
        result = govern(
            settings,
            "approve",
            MODEL,
            "3",
            "--as",
            principal,
            *(["--key", settings.keys_dir / f"{key_name}.key"] if key_name else []),
        )
        if key_name is None:
            with pytest.raises((ApprovalRefused, StatementRefused)) as refused:
                decide(pending.services, MODEL, V3, "approve", principal, key)
            message = str(refused.value)
        else:
            message = str(result.exception)
        assert result.exit_code != 0 and reason in message, (principal, message)
    refusals = {
        type(e)
        for e in pending.services.ledger.events(
            (events.ApprovalDecisionRefused, events.StatementRefused), model=MODEL, version=V3
        )
    }
    assert refusals == {events.ApprovalDecisionRefused, events.StatementRefused}
    assert not pending.services.ledger.events(events.ApprovalGranted, model=MODEL, version=V3)
    assert not pending.release(V3).success
    _assert_nothing_deployed(pending, "dana's approval")
    assert "Whoever trained or requested a version may not approve it" in pending.release_refusal()


def test_a_forged_statement_written_straight_into_the_store_deploys_nothing(pending):
    """An approval of v3's pending pack claiming ravi, signed with a key the roster does not hold, inserted as a
    row (the store's checks bypassed)."""
    request = pending.services.ledger.latest(events.ApprovalRequested, model=MODEL, version=V3)
    statement = Statement.new(
        "approve",
        {"model": MODEL, "version": V3, "evidence_digest": request.evidence_pack},
        "ravi",
        valid_for=timedelta(days=1),
    )
    _insert_raw(pending.services, sign(statement, generate_key_pair()[0]))
    assert not pending.release(V3).success
    _assert_nothing_deployed(pending, "signature does not verify")


def test_an_approval_of_another_version_replayed_deploys_nothing(pending):
    """ravi's real signature over an approval of v9, inserted as a row re-labelled as an approval of v3: the row's
    columns are caches, so it is not found as an approval of v3 at all."""
    other = Statement.new(
        "approve",
        {"model": MODEL, "version": f"{MODEL}-v9", "evidence_digest": "0" * 64},
        "ravi",
        valid_for=timedelta(days=1),
    )
    _insert_raw(pending.services, sign(other, key_of(pending.settings, "ravi")), version=V3)
    assert not pending.release(V3).success
    _assert_nothing_deployed(pending, "no unexpired approve statement for this version")


def test_a_recorded_approval_submitted_again_is_a_replay_refused_and_ledgered(attacked):
    """rhea's approval of v2, as the statement store recorded it, submitted again."""
    services = Services(attacked)
    [recorded] = services.statements.find(action="approve", principal="rhea")
    before = services.ledger.size()
    with pytest.raises(StatementRefused, match="replay: this statement was already recorded at"):
        services.statements.submit(recorded.signed, services.roster)
    [refused] = services.ledger.events(events.StatementRefused, since_seq=before)
    assert refused.statement == recorded.digest and refused.actor == "rhea"
    assert len(services.statements.find(action="approve", principal="rhea")) == 1


# --- the statement store of a real state ----------------------------------------------------------------------------


@pytest.fixture
def cast(attacked) -> Cast:
    """The state's roster and the demo cast's keys."""
    return Cast(Services(attacked).roster, {name: key_of(attacked, name) for name in DEMO_CAST})


@pytest.fixture
def ledger(attacked) -> Ledger:
    return Ledger.for_settings(attacked)


@pytest.fixture
def store(attacked) -> StatementStore:
    return Services(attacked).statements


def foreign_key_statement(cast):
    """Claims to be ravi, signed with a key that is not in the roster."""
    return approval(cast, signer=generate_key_pair()[0])


def changed_after_signing(cast):
    signed = approval(cast)
    other = replace(signed.statement, subject=SUBJECT | {"version": "credit_scoring-v4"})
    return SignedStatement(other, signed.signature)


def expired(cast):
    return approval(cast, now=utc_now() - timedelta(days=8))


def from_the_future(cast):
    return approval(cast, now=utc_now() + MAX_CLOCK_SKEW + timedelta(minutes=1))


def unknown_principal(cast):
    return approval(cast, principal="mallory")


def garbage_signature(cast):
    return SignedStatement(approval(cast).statement, "not-a-signature")


REFUSALS = [
    (foreign_key_statement, "does not verify with 'ravi'"),
    (changed_after_signing, "changed after signing"),
    (expired, "expired at"),
    (from_the_future, "after this machine's clock"),
    (unknown_principal, "principal 'mallory' is not in the roster"),
    (garbage_signature, "not base64 of a 64-byte Ed25519 signature"),
]


@pytest.mark.parametrize("make, reason", REFUSALS, ids=[make.__name__ for make, _ in REFUSALS])
def test_refused_statements_give_a_reason_leave_a_ledger_entry_and_record_nothing(cast, store, ledger, make, reason):
    signed = make(cast)
    before = ledger.size()
    with pytest.raises(StatementRefused) as caught:
        store.submit(signed, cast.roster)
    refusal = caught.value
    assert reason in refusal.reason and reason in str(refusal)
    [entry] = ledger.events(events.StatementRefused, since_seq=before)
    assert refusal.ledger_entry == ledger.entry(entry.seq)
    assert entry.actor == signed.statement.principal
    subject = signed.statement.subject
    assert (entry.model, entry.version, entry.evidence_digest) == (
        subject["model"],
        subject["version"],
        subject["evidence_digest"],
    )
    assert (entry.statement, entry.roster) == (signed.digest, cast.roster.digest)
    assert (entry.statement_action, entry.reason) == ("approve", refusal.reason)
    assert store.find(version=subject["version"]) == []
    assert ledger.events(events.StatementRecorded, since_seq=before) == []


def test_a_replayed_statement_is_refused_and_ledgered(cast, store, ledger):
    signed = approval(cast)
    store.submit(signed, cast.roster)
    before = ledger.size()
    with pytest.raises(StatementRefused, match="replay: this statement was already recorded at"):
        store.submit(SignedStatement.from_json(signed.to_json()), cast.roster)
    [refused] = ledger.events(events.StatementRefused, since_seq=before)
    assert refused.statement == signed.digest
    assert len(store.find(version=SUBJECT["version"])) == 1


def test_a_new_statement_reusing_a_nonce_is_refused(cast, store, ledger):
    first = approval(cast)
    store.submit(first, cast.roster)
    second = sign(replace(first.statement, subject=SUBJECT | {"version": "credit_scoring-v4"}), cast.keys["ravi"])
    before = ledger.size()
    with pytest.raises(StatementRefused, match=f"nonce {first.statement.nonce} was already used by another statement"):
        store.submit(second, cast.roster)
    assert len(ledger.events(events.StatementRefused, since_seq=before)) == 1
    assert store.find(version="credit_scoring-v4") == []
