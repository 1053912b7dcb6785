"""Waiver abuse: a waiver by someone the policy does not let waive, by the version's own requester, longer than the
policy allows, of an unwaivable rule, with a forged signature, carried to another version or rule, kept after its
grantor lost the role or the rule became unwaivable, and a waiver Cedar refused passed off as granted.

A waiver counts only while its signed statement verifies against the roster of the moment, Cedar allows it under
the policy in force, and the ledger recorded it as granted. Each attack runs on a state with a gate decision that
denies version 7 (fairness), on SQLite and on PostgreSQL, and must leave the gate denying, with the refusal in the
ledger (`waiver.refused`, `statement.refused`); a forged `waiver.granted` entry in a real state is named by
`govern lineage`.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from governance import events
from governance.policy.bundle import PolicyBundle
from governance.policy.gate import evaluate_gate
from governance.policy.waivers import WaiverRefused
from governance.release.services import Services
from governance.trust.roster import Roster
from tests.lineage.conftest import govern
from tests.lineage.world import MODEL
from tests.policy.conftest import POLICIES, RULE, UNFAIR, World, demo_cast


@pytest.fixture(scope="module")
def bundle() -> PolicyBundle:
    return PolicyBundle.load(POLICIES)


@pytest.fixture(params=["sqlite", "postgresql"])
def waivers(request, settings, bundle) -> World:
    """The denied gate decision of version 7 in a new state, on each backend."""
    cast = demo_cast(settings)
    if request.param == "postgresql":
        settings = replace(settings, database_url=request.getfixturevalue("postgres_url"))
    return World(settings, bundle, cast)


def refused(waivers: World, **grant) -> str:
    with pytest.raises(WaiverRefused) as raised:
        waivers.grant(**grant)
    assert waivers.honoured() == []
    assert not evaluate_gate(waivers.bundle, UNFAIR, waivers.honoured(), now=waivers.now).allowed
    return str(raised.value)


def test_wrong_role_is_refused_with_a_reason_and_a_ledger_entry(waivers):
    message = refused(waivers, principal="ravi")
    assert "no rule permits ravi (roles: model_risk_approver) to waive credit_scoring version 7" in message
    (entry,) = waivers.events(events.WaiverRefused)
    assert entry.actor == "ravi" and entry.allowed is False


def test_self_waiver_is_refused(waivers):
    subject = replace(waivers.subject, requested_by=("carl",))
    with pytest.raises(WaiverRefused, match="Whoever trained or requested a version may not waive its rules"):
        waivers.grant(subject=subject)
    assert waivers.events(events.WaiverRefused)[0].rules == ("separation_of_duties.no_self_waiver",)


@pytest.mark.parametrize("days, granted", [(30, True), (30.5, False), (31, False)])
def test_waiver_longer_than_the_policy_maximum_is_refused(waivers, days, granted):
    if granted:
        assert waivers.grant(days=days).rule == RULE
        return
    assert "at most 30 days for a high-risk version" in refused(waivers, days=days)
    assert waivers.events(events.WaiverRefused)[0].rules == ("waivers.maximum_duration",)


def test_unwaivable_rule_is_refused(waivers):
    assert "marked @unwaivable" in refused(waivers, rule="data_quality.validation_passed")


def test_forged_signature_is_refused_by_the_store_and_ledgered(waivers):
    message = refused(waivers, key="dana")  # claims to be carl, signed with dana's key
    assert "signature does not verify with 'carl'" in message
    (entry,) = waivers.events(events.StatementRefused)
    assert entry.actor == "carl" and entry.statement_action == "waive"
    assert waivers.events(events.WaiverDecided) == []


def test_waiver_counts_only_for_its_version_and_rule(waivers):
    waiver = waivers.grant()
    other_version = replace(waivers.subject, version="8")
    assert waivers.honoured(subject=other_version) == []
    assert not evaluate_gate(waivers.bundle, replace(UNFAIR, version="8"), [waiver], now=waivers.now).allowed
    other_rule = replace(UNFAIR, di_ci_high_min=1.0, equalized_odds_ci_low_max=0.2)
    decision = evaluate_gate(waivers.bundle, other_rule, [waiver], now=waivers.now)
    assert not decision.allowed and decision.denials[0].rule == "fairness.equalized_odds"


def test_a_waiver_stops_counting_when_its_grantor_loses_the_role(waivers, settings):
    waivers.grant()
    demoted = [
        replace(p, roles=frozenset({"auditor"})) if p.name == "carl" else p for p in waivers.roster.principals.values()
    ]
    roster = Roster.write(settings.home / "roster-v2.yaml", version=2, principals=demoted)
    assert waivers.honoured(roster=roster) == []


def test_a_waiver_stops_counting_when_policy_makes_its_rule_unwaivable(waivers, tmp_path):
    waivers.grant()
    policy_copy = tmp_path / "policies"
    shutil.copytree(POLICIES, policy_copy, ignore=shutil.ignore_patterns("roster*"))
    path = policy_copy / "fairness.cedar"
    path.write_text(
        path.read_text().replace('@id("fairness.disparate_impact")', '@id("fairness.disparate_impact")\n@unwaivable')
    )
    assert waivers.honoured(bundle=PolicyBundle.load(policy_copy)) == []


def test_a_statement_cedar_refused_never_counts_even_if_it_would_pass_today(waivers, settings):
    with pytest.raises(WaiverRefused):
        waivers.grant(principal="audrey")
    promoted = [
        replace(p, roles=frozenset({"compliance_manager"})) if p.name == "audrey" else p
        for p in waivers.roster.principals.values()
    ]
    roster = Roster.write(settings.home / "roster-v2.yaml", version=2, principals=promoted)
    assert waivers.honoured(roster=roster) == []  # never granted: no "waiver.granted" entry


def test_a_waiver_cedar_refused_is_not_honoured_when_a_ledger_writer_records_it_as_granted(waivers):
    """audrey (an auditor) signs a waiver; Cedar refuses it, but the store recorded the statement. A ledger writer
    appends the `waiver.granted` entry the refusal withheld: the waiver is authorised again where it is used."""
    assert "no rule permits audrey" in refused(waivers, principal="audrey")
    [statement] = waivers.store.find(action="waive", principal="audrey")
    [refusal] = waivers.events(events.WaiverRefused)
    waivers.ledger.append(
        events.WaiverGranted(
            actor="audrey",
            model=refusal.model,
            version=refusal.version,
            rule=refusal.rule,
            until=refusal.until,
            statement=statement.digest,
            policy=refusal.policy,
            allowed=True,
        )
    )
    assert waivers.honoured() == []
    assert not evaluate_gate(waivers.bundle, UNFAIR, waivers.honoured(), now=waivers.now).allowed


@pytest.mark.slow
def test_a_forged_waiver_entry_in_a_real_state_is_named_by_lineage(attacked):
    """A `waiver.granted` entry for v2, appended with no signed statement behind it."""
    services = Services(attacked)
    gate = services.ledger.latest(events.GateDecided, model=MODEL, version=f"{MODEL}-v2")
    services.ledger.append(
        events.WaiverGranted(
            actor="carl",
            model=MODEL,
            version=f"{MODEL}-v2",
            rule=RULE,
            until="2999-01-01T00:00:00.000000Z",
            statement="e" * 64,
            policy=gate.policy,
            allowed=True,
        )
    )
    lineage = govern(attacked, "lineage", MODEL, "2")
    assert lineage.exit_code == 1 and "e" * 12 in lineage.output, lineage.output
