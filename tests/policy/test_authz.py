"""Who may do what: the authorisation rules in Cedar, deny by default."""

from __future__ import annotations

from dataclasses import replace

import pytest

from governance.policy.authz import ModelSubject, VersionSubject, authorize
from governance.policy.bundle import PolicyBundle, PolicyError

ROSTER = {
    "dana": ["data_scientist"],
    "ravi": ["model_risk_approver"],
    "rhea": ["model_risk_approver"],
    "paul": ["ml_platform"],
    "bea": ["business_owner"],
    "bob": ["business_owner"],  # of another model
    "carl": ["compliance_manager"],
    "audrey": ["auditor"],
    "system": ["automation"],
}
MODEL = ModelSubject("credit_scoring", business_owner="bea")
HIGH = VersionSubject("credit_scoring", "7", "high", trained_by=["dana"], requested_by=["rhea"], business_owner="bea")
MEDIUM = VersionSubject(
    "credit_scoring", "7", "medium", trained_by=["dana"], requested_by=["rhea"], business_owner="bea"
)
FRESH = {"approval_age_hours": 0, "approvers": 1}
WAIVE = {"rule": "fairness.disparate_impact", "rule_unwaivable": False, "duration_days": 30}
ROLLBACK = {"target_version": "6", "target_approved": True}

# action, subject, context, principals allowed (everyone else in ROSTER is denied)
MATRIX = [
    ("approve", HIGH, FRESH, {"ravi"}),  # rhea requested it
    ("reject", HIGH, {}, {"ravi", "rhea"}),
    ("approve", MEDIUM, FRESH, {"ravi", "bea"}),
    ("reject", MEDIUM, {}, {"ravi", "rhea", "bea"}),
    ("deploy", HIGH, {"human_approval": True}, {"paul", "system"}),  # the release job acts on the approval
    ("deploy", HIGH, {"human_approval": False}, set()),
    ("rollback", MODEL, ROLLBACK, {"paul", "system"}),
    ("disable", MODEL, {}, {"bea", "paul", "system"}),
    ("enable", MODEL, {}, {"bea"}),
    ("waive", HIGH, WAIVE, {"carl"}),
    ("train", MODEL, {}, {"dana", "system"}),
    ("read", HIGH, {}, {"dana", "ravi", "rhea", "paul", "bea", "bob", "carl", "audrey"}),
    ("read", MODEL, {}, {"dana", "ravi", "rhea", "paul", "bea", "bob", "carl", "audrey"}),
]


@pytest.mark.parametrize(
    "action, subject, context, allowed",
    MATRIX,
    ids=[f"{a}-{getattr(s, 'risk_tier', 'model')}" for a, s, _, _ in MATRIX],
)
def test_role_by_action_matrix(bundle, action, subject, context, allowed):
    decided = {name: authorize(bundle, ROSTER, name, action, subject, context) for name in ROSTER}
    assert {name for name, decision in decided.items() if decision.allowed} == allowed
    for name, decision in decided.items():
        assert decision.reasons, f"{name} {action}: a decision always says why"
        assert decision.policy_digest == bundle.digest


@pytest.mark.parametrize("action, subject", [("enable", MODEL), ("disable", MODEL), ("approve", MEDIUM)])
def test_the_business_owner_role_acts_on_its_own_models_only(bundle, action, subject):
    context = FRESH if action == "approve" else {}
    assert authorize(bundle, ROSTER, "bea", action, subject, context).allowed
    other = authorize(bundle, ROSTER, "bob", action, subject, context)
    assert not other.allowed and other.reasons
    unowned = replace(subject, business_owner=None)  # a subject that does not say whose it is gives the role nothing
    assert not authorize(bundle, ROSTER, "bea", action, unowned, context).allowed


def test_denial_without_a_permit_says_who_lacks_what(bundle):
    decision = authorize(bundle, ROSTER, "audrey", "deploy", HIGH, {"human_approval": True})
    assert not decision.allowed and decision.rules == ()
    assert decision.reasons == ("no rule permits audrey (roles: auditor) to deploy credit_scoring version 7",)


@pytest.mark.parametrize("field", ["trained_by", "requested_by"])
def test_trainer_or_requester_never_approves(bundle, field):
    version = VersionSubject(
        "credit_scoring", "7", "high", **{"trained_by": ["dana"], "requested_by": ["paul"], field: ["ravi"]}
    )
    decision = authorize(bundle, ROSTER, "ravi", "approve", version, FRESH)
    assert not decision.allowed
    assert decision.rules == ("separation_of_duties.no_self_approval",)
    assert decision.reasons == ("Whoever trained or requested a version may not approve it.",)


def test_a_person_with_both_roles_still_cannot_approve_own_work(bundle):
    roster = {**ROSTER, "dana": ["data_scientist", "model_risk_approver"]}
    assert not authorize(bundle, roster, "dana", "approve", HIGH, FRESH).allowed
    assert authorize(
        bundle, roster, "dana", "approve", VersionSubject("credit_scoring", "8", "high", ["paul"], ["paul"]), FRESH
    ).allowed


def test_a_requester_a_ledger_entry_names_without_a_verifying_statement_may_not_approve(bundle):
    roster = {**ROSTER, "dana": ["data_scientist", "model_risk_approver"]}
    named = VersionSubject("credit_scoring", "7", "high", ["paul"], [], named_requesters=["dana"])
    two = {**FRESH, "approvers": 2}
    assert authorize(bundle, roster, "dana", "approve", named, two).rules == ("separation_of_duties.no_self_approval",)
    assert authorize(bundle, roster, "ravi", "approve", named, two).allowed  # a second approver still counts
    assert not authorize(bundle, roster, "ravi", "approve", named, FRESH).allowed  # and is needed: unknown


@pytest.mark.parametrize("approvers, allowed", [(1, False), (2, True)])
def test_a_version_nobody_verifiably_requested_needs_two_approvers(bundle, approvers, allowed):
    unknown = VersionSubject("credit_scoring", "7", "high", trained_by=["dana"], requested_by=[])
    decision = authorize(bundle, ROSTER, "ravi", "approve", unknown, {**FRESH, "approvers": approvers})
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rules == ("separation_of_duties.unknown_requester_second_approver",)
        assert "two different approvers" in decision.reasons[0]


@pytest.mark.parametrize("hours, allowed", [(0, True), (168, True), (169, False), (-1, False)])
def test_approvals_expire(bundle, hours, allowed):
    decision = authorize(bundle, ROSTER, "ravi", "approve", HIGH, {**FRESH, "approval_age_hours": hours})
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rules == ("authorisation.approval_expiry",)


@pytest.mark.parametrize("action, context", [("approve", FRESH), ("reject", {}), ("enable", {}), ("waive", WAIVE)])
def test_system_principal_never_takes_human_decisions(bundle, action, context):
    subject = MODEL if action == "enable" else HIGH
    assert not authorize(bundle, ROSTER, "system", action, subject, context).allowed
    # Even holding every human role (the roster refuses that, Cedar does not rely on it), the forbid wins.
    everything = {
        **ROSTER,
        "system": ["automation", "model_risk_approver", "ml_platform", "business_owner", "compliance_manager"],
    }
    decision = authorize(bundle, everything, "system", action, subject, context)
    assert not decision.allowed and decision.rules == ("authorisation.automation_limits",)


def test_rollback_only_to_an_approved_version(bundle):
    decision = authorize(bundle, ROSTER, "system", "rollback", MODEL, {**ROLLBACK, "target_approved": False})
    assert not decision.allowed and decision.rules == ("authorisation.rollback_target_approved",)


@pytest.mark.parametrize(
    "tier, days, allowed",
    [
        ("high", 30, True),
        ("high", 31, False),
        ("medium", 60, True),
        ("medium", 61, False),
        ("low", 90, True),
        ("low", 91, False),
        ("high", 1, True),
        ("high", 0, False),
        ("high", -3, False),
    ],
)
def test_waiver_duration_limits_per_tier(bundle, tier, days, allowed):
    version = VersionSubject("credit_scoring", "7", tier, trained_by=["dana"])
    decision = authorize(bundle, ROSTER, "carl", "waive", version, {**WAIVE, "duration_days": days})
    assert decision.allowed is allowed


def test_no_waiver_of_an_unwaivable_rule_or_of_own_work(bundle):
    unwaivable = {**WAIVE, "rule": "data_quality.validation_passed", "rule_unwaivable": True}
    assert authorize(bundle, ROSTER, "carl", "waive", HIGH, unwaivable).rules == ("waivers.unwaivable_rule",)
    own = VersionSubject("credit_scoring", "7", "high", trained_by=["dana"], requested_by=["carl"])
    assert authorize(bundle, ROSTER, "carl", "waive", own, WAIVE).rules == ("separation_of_duties.no_self_waiver",)


def test_unknown_principal_is_denied_and_bad_input_is_an_error(bundle):
    decision = authorize(bundle, ROSTER, "mallory", "read", MODEL)
    assert not decision.allowed and decision.reasons == ("'mallory' is not a principal of the roster",)
    with pytest.raises(PolicyError, match="role\\(s\\) wizard not declared"):
        authorize(bundle, {"merlin": ["wizard"]}, "merlin", "read", MODEL)
    with pytest.raises(PolicyError, match="approval_age_hours"):
        authorize(bundle, ROSTER, "ravi", "approve", HIGH, {})
    with pytest.raises(PolicyError, match="risk tier 'HIGH'"):
        VersionSubject("credit_scoring", "7", "HIGH")
    with pytest.raises(PolicyError, match="cannot ask Cedar"):
        authorize(bundle, ROSTER, "paul", "deploy", MODEL)  # deploy applies to a version, not a model


def test_a_forbid_that_errors_while_evaluating_denies(policy_copy):
    with (policy_copy / "waivers.cedar").open("a") as fh:
        fh.write(
            '\n@id("waivers.overflowing")\n@message("m")\n'
            'forbid (principal, action == Action::"waive", resource)\n'
            "when { context.duration_days * 9223372036854775807 > 0 };\n"
        )
    decision = authorize(PolicyBundle.load(policy_copy), ROSTER, "carl", "waive", HIGH, WAIVE)
    assert not decision.allowed
    assert any("could not be evaluated" in reason and "waivers.overflowing" in reason for reason in decision.reasons)
