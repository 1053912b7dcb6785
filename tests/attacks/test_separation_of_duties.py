"""Attacks on separation of duties: issue 20's path 3 (an approver launches the candidate run without a signed
request, as Dagster's UI lets anyone, and approves it alone), a run tag claiming a requester, forged request
entries, a request signed by someone who may not train or with someone else's key, and a forged gate entry naming
the champion's approver as its trainer.

The requester of a version is whoever's signed `request` statement verifies where it is used; a run tag or an
unsigned ledger entry names nobody, and a version nobody verifiably requested needs two different approvers.
Each attack runs on a copy of the lineage world with v3 (requested by dana) and v4 (launched as from the UI, its
run tag naming paul) awaiting approval, or of the lineage world itself, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from governance import events
from governance.release.approvals import ApprovalRefused, decide, valid_approval
from governance.release.production import verified_production
from governance.release.requests import REQUEST_VALIDITY, CandidateRequestRefused, request_candidate, requesters
from governance.release.services import Services
from governance.timestamps import utc_now
from governance.trust.roster import Roster
from jobs.candidates import next_candidate_key
from tests.attacks.support import V3, V4, answers, key_of, sql
from tests.helpers import travel
from tests.lineage.conftest import govern
from tests.lineage.world import MODEL

pytestmark = pytest.mark.slow
TWO = "two different approvers"


def _awaiting(settings, version: str) -> dict:
    status = json.loads(govern(settings, "status", "--json").output)[0]
    return next(a for a in status["awaiting_approval"] if a["version"] == version)


def test_an_approver_launching_without_a_request_cannot_be_the_sole_approver(pending):
    """Path 3: v4 was launched without a signed request (its run tag names paul); ravi approves it alone."""
    settings, services = pending.settings, pending.services
    assert requesters(services, MODEL, V4).verified == ()
    assert _awaiting(settings, V4)["may_approve"] == ["ravi", "rhea"]  # each of the two must be one
    first = govern(settings, "approve", MODEL, "4", "--as", "ravi")
    assert first.exit_code == 0, first.output
    assert "a second approver must approve" in first.output
    assert _awaiting(settings, V4)["may_approve"] == ["rhea"]  # ravi's approval is in: the second is rhea's
    assert services.ledger.latest(events.ApprovalGranted, model=MODEL, version=V4) is None  # nothing for the sensor
    with pytest.raises(ApprovalRefused, match=TWO):
        valid_approval(services, MODEL, V4, "test")
    assert not pending.release(V4).success
    assert TWO in pending.release_refusal()
    assert services.registry.champion(MODEL) == 1 and verified_production(services, MODEL).champion == 1
    size = services.ledger.size()
    with pytest.raises(
        ApprovalRefused, match="ravi already approved evidence pack .* someone else: nothing was recorded"
    ):
        decide(services, MODEL, V4, "approve", "ravi", key_of(settings, "ravi"))  # the same person twice
    assert services.ledger.size() == size
    assert len(services.statements.find(action="approve", model=MODEL, version=V4)) == 1
    assert not pending.release(V4).success and services.registry.champion(MODEL) == 1

    second = decide(services, MODEL, V4, "approve", "rhea", key_of(settings, "rhea"))
    assert not second.awaiting_second_approver
    assert services.ledger.latest(events.ApprovalGranted, model=MODEL, version=V4).actor == "rhea"
    assert valid_approval(services, MODEL, V4, "test")[0].principal == "rhea"
    assert pending.release(V4).success and services.registry.champion(MODEL) == 4
    lineage = govern(settings, "lineage", MODEL, "4")
    assert lineage.exit_code == 0, lineage.output  # the deployment verifies: two approvers stand behind it


def test_a_run_tag_names_no_requester_and_a_signed_one_stays(pending):
    """dana signed the request for v3; a re-run tagged as requested by rhea, or untagged, changes neither."""
    settings = pending.settings
    assert pending.candidate(V3, {"governance/requested_by": "rhea"}).success
    assert requesters(pending.services, MODEL, V3).verified == ("dana",)
    assert "rhea" in _awaiting(settings, V3)["may_approve"]
    assert govern(settings, "approve", MODEL, "3", "--as", "rhea").exit_code == 0  # the tag claimed her: ignored
    assert valid_approval(pending.services, MODEL, V3, "test")[0].principal == "rhea"
    assert pending.candidate(V3).success  # a new pack, untagged
    assert requesters(pending.services, MODEL, V3).verified == ("dana",)
    assert "requested by dana" in govern(settings, "lineage", MODEL, "3").output


def test_a_forged_request_entry_names_nobody(pending):
    """Request entries for v4 appended by a ledger writer: one citing no statement, one citing dana's real request
    for another version, and paul's copy of that request: each names nobody, and lineage reports them."""
    settings, services = pending.settings, pending.services
    other = request_candidate(services, MODEL, f"{MODEL}-v9", "dana", key_of(settings, "dana"))
    forged = [
        events.CandidateRequested(actor="dana", model=MODEL, version=V4, statement="0" * 64, policy="0" * 64),
        events.CandidateRequested(
            actor="dana", model=MODEL, version=V4, statement=other.statement, policy=other.policy
        ),
        events.CandidateRequested(
            actor="paul", model=MODEL, version=f"{MODEL}-v9", statement=other.statement, policy=other.policy
        ),
    ]
    for event in forged:
        services.ledger.append(event)
    asked = requesters(services, MODEL, V4)
    assert asked.verified == () and len(asked.unverified) == 2
    assert "no signed statement 000000000000 is recorded" in asked.unverified[0]
    assert "is a request of {'model': 'credit_scoring', 'version': 'credit_scoring-v9'}" in asked.unverified[1]
    assert requesters(services, MODEL, f"{MODEL}-v9").verified == ("dana",)  # paul's copy counts for nobody
    assert "was signed by dana" in requesters(services, MODEL, f"{MODEL}-v9").unverified[0]
    assert _awaiting(settings, V4)["may_approve"] == ["ravi", "rhea"]  # still two approvers needed
    lineage = govern(settings, "lineage", MODEL, "4")
    assert lineage.exit_code != 0 and "candidate request: ledger entry" in lineage.output


def test_a_requester_who_deletes_their_request_row_still_may_not_approve(pending):
    """dana, who signed the request for v3 before it was trained, is made an approver too; she deletes her
    request's statement row: the request no longer verifies, so two approvers must approve, but dana, whom the
    ledger's request entry names, is not one of them (before, her approval counted as the first of the two)."""
    settings, services = pending.settings, pending.services
    both = [
        replace(p, roles=p.roles | {"model_risk_approver"}) if p.name == "dana" else p
        for p in services.roster.principals.values()
    ]
    Roster.write(settings.roster_path, version=services.roster.version + 1, principals=both)
    services = Services(settings)
    [requested] = services.ledger.events(events.CandidateRequested, model=MODEL, version=V3)
    sql(settings, "delete from signed_statements where digest = :digest", digest=requested.statement)
    asked = requesters(services, MODEL, V3)
    assert (asked.verified, asked.named) == ((), ("dana",))
    assert _awaiting(settings, V3)["may_approve"] == ["ravi", "rhea"]
    refused = govern(settings, "approve", MODEL, "3", "--as", "dana")
    assert isinstance(refused.exception, ApprovalRefused) and "may not approve" in str(refused.exception)
    assert "a second approver must approve" in govern(settings, "approve", MODEL, "3", "--as", "rhea").output
    assert not pending.release(V3).success
    assert services.registry.champion(MODEL) == 1 and verified_production(services, MODEL).champion == 1


def test_a_request_signed_after_the_version_was_trained_names_nobody(pending):
    """v4 was launched from the UI (its requester unknown: two approvers); dana signs a request for it afterwards,
    which would let one approver release what anyone, an approver included, launched. It counts for nobody."""
    settings, services = pending.settings, pending.services
    request_candidate(services, MODEL, V4, "dana", key_of(settings, "dana"))
    asked = requesters(services, MODEL, V4)
    assert asked.verified == () and "ledgered after the version was trained" in asked.unverified[0]
    assert "a second approver must approve" in govern(settings, "approve", MODEL, "4", "--as", "ravi").output
    assert not pending.release(V4).success and services.registry.champion(MODEL) == 1


@pytest.mark.parametrize("registered", ["once", "also by a ledger writer while the request was valid"])
def test_an_expired_request_authorises_no_later_run(pending, registered, monkeypatch):
    """dana signed a request for v5 ten days ago and its run never registered a version; an approver launches v5
    from the UI now. The request expired long before the version was trained: it names nobody, so the version
    needs two approvers (before, dana stood behind the run and one approver, its launcher, was enough). A ledger
    writer who appended a registration of v5 while the request was still valid changes nothing: of several
    registrations, a request's expiry is judged at the last."""
    settings, services = pending.settings, pending.services
    v5 = next_candidate_key(pending.life.instance, pending.life.registry, pending.life.config.model(MODEL))
    assert v5 == f"{MODEL}-v5"
    if registered == "once":
        request_candidate(services, MODEL, v5, "dana", key_of(settings, "dana"), now=utc_now() - timedelta(days=10))
    else:
        request_candidate(services, MODEL, v5, "dana", key_of(settings, "dana"))
        v3 = services.ledger.latest(events.ModelRegistered, model=MODEL, version=V3)
        services.ledger.append(replace(v3, version=v5, seq=0, ts="", entry_hash=""))
        travel(monkeypatch, REQUEST_VALIDITY + timedelta(hours=1))
    assert pending.candidate(v5, None).success
    asked = requesters(services, MODEL, v5)
    assert asked.verified == () and asked.named == ("dana",)
    assert "expired at" in asked.unverified[0] and "before the version was trained" in asked.unverified[0]
    assert "a second approver must approve" in govern(settings, "approve", MODEL, "5", "--as", "ravi").output
    assert not pending.release(v5).success and services.registry.champion(MODEL) == 1


def test_only_who_may_train_can_sign_a_request(attacked):
    services = Services(attacked)
    before = len(services.ledger.events(events.CandidateRequested, model=MODEL))
    size = services.ledger.size()
    with pytest.raises(CandidateRequestRefused, match="ravi may not request a credit_scoring candidate"):
        request_candidate(services, MODEL, f"{MODEL}-v3", "ravi", key_of(attacked, "ravi"))
    with pytest.raises(CandidateRequestRefused, match="does not verify with 'dana'"):
        request_candidate(services, MODEL, f"{MODEL}-v3", "dana", key_of(attacked, "paul"))
    assert len(services.ledger.events(events.CandidateRequested, model=MODEL)) == before
    [forgery] = services.ledger.events(events.StatementRefused, since_seq=size)
    assert forgery.actor == "dana" and forgery.statement_action == "request"


def test_a_request_cedar_refused_is_ledgered_as_a_refusal(attacked):
    services = Services(attacked)
    size = services.ledger.size()
    with pytest.raises(CandidateRequestRefused):
        request_candidate(services, MODEL, f"{MODEL}-v3", "ravi", key_of(attacked, "ravi"))
    kinds = {type(e) for e in services.ledger.events(events.Event, since_seq=size)}
    assert kinds - {events.StatementRecorded}, kinds


def test_a_request_cedar_refused_names_nobody_when_a_ledger_writer_appends_it(pending):
    """bea (business owner, who may not train) signs a request for v4; Cedar refuses it, but the store recorded the
    statement. A ledger writer appends the `candidate.requested` entry the refusal withheld: were bea a verified
    requester, one approver would do."""
    settings, services = pending.settings, pending.services
    with pytest.raises(CandidateRequestRefused, match="bea may not request"):
        request_candidate(services, MODEL, V4, "bea", key_of(settings, "bea"))
    [signed] = services.statements.find(action="request", principal="bea")
    services.ledger.append(
        events.CandidateRequested(actor="bea", model=MODEL, version=V4, statement=signed.digest, policy="0" * 64)
    )
    first = govern(settings, "approve", MODEL, "4", "--as", "ravi")
    assert not pending.release(V4).success and services.registry.champion(MODEL) == 1
    assert {a["version"] for a in answers(settings)} == {1}
    assert "a second approver must approve" in first.output, first.output
    assert requesters(services, MODEL, V4).verified == ()
    lineage = govern(settings, "lineage", MODEL, "4")
    assert lineage.exit_code != 0 and "candidate request: ledger entry" in lineage.output


def test_a_forged_gate_entry_changes_nothing_and_is_reported(attacked):
    """Who may approve a version is judged on the gate decision sealed in the pack the approval signed, not on
    the latest `gate.decision` entry, which a ledger writer can append: naming the champion's approver as its
    trainer changes nothing. Lineage reports the entry: it contradicts the decision it records, or (altered to
    agree) the sealed entry on the same evidence."""
    services = Services(attacked)
    gate = services.ledger.latest(events.GateDecided, model=MODEL, version=f"{MODEL}-v1")
    services.ledger.append(replace(gate, trained_by=("ravi",)))
    services.ledger.append(replace(gate, trained_by=("ravi",), decision={**gate.decision, "trained_by": ["ravi"]}))
    assert services.ledger.verify().ok
    assert verified_production(services, MODEL).champion == 1  # ravi's approval still verifies
    assert {a["version"] for a in answers(attacked)} == {1}
    lineage = govern(attacked, "lineage", MODEL, "1")
    assert lineage.exit_code == 1, lineage.output
    assert lineage.output.count("its facts contradict the decision it records") == 1, lineage.output
    assert lineage.output.count("trainers ['ravi'] and requesters") == 2
    assert "a forged or altered gate entry" in lineage.output


def test_once_two_approvers_granted_a_pack_the_first_may_approve_it_again(pending):
    """ravi's approval of v4 waited for a second; rhea's granted it. If its release is then given up, `govern
    status` advises approving it again: ravi's own first approval still stands, yet he is not refused as if it
    still waited for a second approver."""
    settings, services = pending.settings, pending.services
    assert decide(services, MODEL, V4, "approve", "ravi", key_of(settings, "ravi")).awaiting_second_approver
    assert not decide(services, MODEL, V4, "approve", "rhea", key_of(settings, "rhea")).awaiting_second_approver
    again = decide(services, MODEL, V4, "approve", "ravi", key_of(settings, "ravi"))
    assert not again.awaiting_second_approver
    grants = services.ledger.events(events.ApprovalGranted, model=MODEL, version=V4)
    assert [g.actor for g in grants] == ["rhea", "ravi"]
