"""The release gate on evidence values: every rule at, just below and just above its threshold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from governance.digests import canonical_json
from governance.policy.bundle import PolicyBundle
from governance.policy.evidence import EvidenceError
from governance.policy.gate import Waiver, evaluate_gate

from .conftest import passing_evidence

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
STEP = Decimal("0.0001")

# rule, attribute, threshold per tier, how it denies:
#   "below": value < threshold denies; "above": value > threshold denies; "at_or_above": value >= threshold denies
THRESHOLDS = [
    ("performance.auc_floor", "auc", {"high": "0.70", "medium": "0.65", "low": "0.60"}, "below"),
    ("performance.ks_floor", "ks", {"high": "0.25", "medium": "0.20", "low": "0.15"}, "below"),
    ("performance.champion_auc_drop", "champion_auc_drop", {"high": "0.01", "medium": "0.02", "low": "0.03"}, "above"),
    ("fairness.disparate_impact", "di_ci_high_min", {"high": "0.8", "medium": "0.8", "low": "0.7"}, "below"),
    ("fairness.disparate_impact", "di_ci_low_max", {"high": "1.25", "medium": "1.25", "low": "1.43"}, "above"),
    ("fairness.equalized_odds", "equalized_odds_ci_low_max", {"high": "0.1", "medium": "0.1", "low": "0.15"}, "above"),
    (
        "explainability.protected_proxy",
        "proxy_weighted_max",
        {"high": "0.5", "medium": "0.6", "low": "0.7"},
        "at_or_above",
    ),
    (
        "explainability.encoded_attribute",
        "proxy_strength_max",
        {"high": "0.95", "medium": "0.95", "low": "0.95"},
        "at_or_above",
    ),
    ("data_quality.data_age", "data_age_days", {"high": "365", "medium": "540", "low": "730"}, "above"),
]


def threshold_cases():
    for rule, attribute, tiers, kind in THRESHOLDS:
        for tier, text in tiers.items():
            threshold = Decimal(text)
            step = 1 if attribute == "data_age_days" else STEP
            for where, value, denied in [
                ("at", threshold, kind == "at_or_above"),
                ("just below", threshold - step, kind == "below"),
                ("just above", threshold + step, kind != "below"),
            ]:
                yield pytest.param(
                    rule, attribute, tier, threshold, value, denied, id=f"{rule}-{attribute}-{tier}-{where}"
                )


def evidence_with(attribute: str, value: Decimal, tier: str):
    if attribute == "champion_auc_drop":  # champion AUC minus this version's AUC (0.80)
        return passing_evidence(risk_tier=tier, champion_auc=float(Decimal("0.80") + value))
    if attribute == "data_age_days":
        return passing_evidence(risk_tier=tier, data_age_days=int(value))
    return passing_evidence(risk_tier=tier, **{attribute: float(value)})


@pytest.mark.parametrize("tier", ["high", "medium", "low"])
def test_passing_evidence_passes_every_tier(bundle, tier):
    decision = evaluate_gate(bundle, passing_evidence(risk_tier=tier), now=NOW)
    assert decision.allowed and decision.denials == () and decision.errors == ()
    assert decision.policy_digest == bundle.digest


@pytest.mark.parametrize("rule, attribute, tier, threshold, value, denied", list(threshold_cases()))
def test_threshold(bundle, rule, attribute, tier, threshold, value, denied):
    decision = evaluate_gate(bundle, evidence_with(attribute, value, tier), now=NOW)
    assert decision.allowed is not denied
    if not denied:
        assert decision.denials == ()
        return
    (denial,) = decision.denials
    assert denial.rule == rule and denial.message == bundle.rule(rule).message
    (finding,) = denial.findings
    assert finding.attribute == attribute
    assert finding.threshold == (int(threshold) if attribute == "data_age_days" else float(threshold))
    assert Decimal(str(finding.measured)) == value


@pytest.mark.parametrize(
    "changes, rule, requirement",
    [
        ({"validation_passed": False}, "data_quality.validation_passed", "validation_passed is true"),
        (
            {"card_complete": False, "card_missing_sections": ["limitations", "intended use"]},
            "documentation.model_card_complete",
            "card_complete is true",
        ),
        ({"trained_by": []}, "separation_of_duties.trainer_recorded", "trained_by is not empty"),
    ],
)
@pytest.mark.parametrize("tier", ["high", "medium", "low"])
def test_true_false_rules(bundle, changes, rule, requirement, tier):
    assert evaluate_gate(bundle, passing_evidence(risk_tier=tier), now=NOW).allowed
    decision = evaluate_gate(bundle, passing_evidence(risk_tier=tier, **changes), now=NOW)
    assert not decision.allowed
    assert [(d.rule, d.findings[0].requirement) for d in decision.denials] == [(rule, requirement)]


def test_no_champion_means_no_drop_rule(bundle):
    decision = evaluate_gate(bundle, passing_evidence(champion_auc=None, auc=0.71), now=NOW)
    assert decision.allowed


@pytest.mark.parametrize(
    "attribute, value, denied",
    [
        ("auc", 0.69996, True),  # rounds down to 0.6999: never up to the floor
        ("auc", 0.7, False),  # float 0.7 is 0.69999999999999995559; read as 0.7
        ("auc", 0.70004, False),
        ("equalized_odds_ci_low_max", 0.10004, True),  # rounds up to 0.1001
        ("equalized_odds_ci_low_max", 0.1, False),
        ("equalized_odds_ci_low_max", 0.09996, False),
        ("di_ci_high_min", 0.79999, True),
        ("di_ci_low_max", 1.25001, True),
        ("proxy_weighted_max", 0.49999, True),  # rounds up to 0.5000, which ">= 0.5 denies" catches: safe side
        ("proxy_weighted_max", 0.4999, False),
        ("proxy_strength_max", 0.94999, True),
        ("proxy_strength_max", 0.9499, False),
    ],
)
def test_rounding_to_four_digits_never_passes_a_failing_value(bundle, attribute, value, denied):
    decision = evaluate_gate(bundle, passing_evidence(**{attribute: value}), now=NOW)
    assert decision.allowed is not denied


def test_small_group_failing_point_estimate_but_not_interval_passes(bundle):
    evidence = passing_evidence(
        di_point_min=0.62,
        di_ci_high_min=0.97,
        di_ci_low_max=0.41,
        context={"di_ci_high_min": "age_band=18-24 (n=41) vs 40-59: 0.62 [0.31, 0.97]"},
    )
    assert evaluate_gate(bundle, evidence, now=NOW).allowed


def test_large_group_whose_whole_interval_fails_is_denied_with_the_point_estimate(bundle):
    evidence = passing_evidence(
        di_point_min=0.62,
        di_ci_high_min=0.70,
        di_ci_low_max=0.55,
        context={"di_ci_high_min": "sex=F vs M: 0.62 [0.55, 0.70]"},
    )
    decision = evaluate_gate(bundle, evidence, now=NOW)
    (denial,) = decision.denials
    assert denial.rule == "fairness.disparate_impact"
    (finding,) = denial.findings
    assert (finding.attribute, finding.measured, finding.threshold) == ("di_ci_high_min", 0.70, 0.8)
    assert finding.detail == "sex=F vs M: 0.62 [0.55, 0.70]"
    assert "sex=F vs M: 0.62 [0.55, 0.70]" in decision.reasons()[0]


def test_interval_decides_even_when_the_point_estimate_is_inside_the_band(bundle):
    # A group can sit inside the band on its point estimate while its bootstrap interval lies
    # entirely below it (skewed resampling): the rule is defined on the interval, so it denies.
    evidence = passing_evidence(di_point_min=0.85, di_ci_high_min=0.79, di_ci_low_max=0.60)
    (denial,) = evaluate_gate(bundle, evidence, now=NOW).denials
    assert denial.rule == "fairness.disparate_impact"
    assert denial.findings[0].detail == "lowest point estimate 0.8500"


def test_both_sides_of_the_band_are_reported(bundle):
    evidence = passing_evidence(di_ci_high_min=0.7, di_ci_low_max=1.3)
    (denial,) = evaluate_gate(bundle, evidence, now=NOW).denials
    assert [f.attribute for f in denial.findings] == ["di_ci_high_min", "di_ci_low_max"]


def test_every_denying_rule_is_reported(bundle):
    evidence = passing_evidence(auc=0.6, validation_passed=False, proxy_weighted_max=0.9, data_age_days=999)
    decision = evaluate_gate(bundle, evidence, now=NOW)
    assert [d.rule for d in decision.denials] == [
        "data_quality.validation_passed",
        "data_quality.data_age",
        "explainability.protected_proxy",
        "performance.auc_floor",
    ]
    assert set(decision.rules_evaluated) == {rule.id for rule in bundle.gate_rules} | {"release_gate.baseline"}


def test_changed_threshold_changes_the_decision_and_digest(bundle, policy_copy):
    evidence = passing_evidence(auc=0.75)
    before = evaluate_gate(bundle, evidence, now=NOW)
    path = policy_copy / "performance.cedar"
    path.write_text(
        path.read_text().replace(
            '"high" && resource.auc.lessThan(decimal("0.7000"))', '"high" && resource.auc.lessThan(decimal("0.8000"))'
        )
    )
    stricter = PolicyBundle.load(policy_copy)
    after = evaluate_gate(stricter, evidence, now=NOW)
    assert before.allowed and not after.allowed
    assert after.policy_digest == stricter.digest != before.policy_digest
    finding = after.denials[0].findings[0]
    assert (after.denials[0].rule, finding.threshold, finding.requirement) == (
        "performance.auc_floor",
        0.8,
        "auc >= 0.8000",
    )


def test_without_a_promote_permit_nothing_is_promoted(policy_copy):
    (policy_copy / "release_gate.cedar").unlink()
    decision = evaluate_gate(PolicyBundle.load(policy_copy), passing_evidence(), now=NOW)
    assert not decision.allowed and decision.denials == ()
    assert "no rule permits promote" in decision.errors[0]


def test_decision_serialises_to_canonical_json(bundle):
    evidence = passing_evidence(di_ci_low_max=float("inf"), card_complete=False)
    decision = evaluate_gate(bundle, evidence, now=NOW)
    data = decision.to_dict()
    assert json.loads(json.dumps(data)) == data
    canonical_json(data)  # ledger-ready: no NaN or infinity
    assert data["decided_at"] == "2026-11-22T10:00:00.000000Z"
    assert data["denials"][1]["findings"][0]["measured"] == "inf"
    assert set(data) == {
        "model",
        "version",
        "risk_tier",
        "trained_by",
        "requested_by",
        "allowed",
        "policy_digest",
        "evidence_digest",
        "decided_at",
        "valid_until",
        "rules_evaluated",
        "denials",
        "errors",
    }


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"risk_tier": "critical"}, "risk_tier"),
        ({"auc": float("nan")}, "auc"),
        ({"validation_passed": 1}, "validation_passed"),
        ({"data_age_days": 3.5}, "data_age_days"),
        ({"trained_by": "dana"}, "trained_by"),
    ],
)
def test_malformed_evidence_is_refused_naming_the_field(changes, field):
    with pytest.raises(EvidenceError, match=f"credit_scoring version 7: .*field '{field}'"):
        passing_evidence(**changes)


# --- waivers as the gate applies them (granting and verifying them: test_waivers.py) ---------


def waiver(rule: str = "fairness.disparate_impact", **changes) -> Waiver:
    fields = dict(
        model="credit_scoring",
        version="7",
        rule=rule,
        until=NOW + timedelta(days=10),
        granted_by="carl",
        granted_at=NOW - timedelta(days=1),
        reason="remediation plan agreed",
        statement_digest="ab" * 32,
    )
    return Waiver(**(fields | changes))


UNFAIR = dict(di_ci_high_min=0.7, di_point_min=0.62)


def test_a_waiver_for_exactly_this_version_and_rule_is_honoured(bundle):
    decision = evaluate_gate(bundle, passing_evidence(**UNFAIR), [waiver()], now=NOW)
    assert decision.allowed
    (denial,) = decision.denials
    assert denial.waiver == waiver()
    assert decision.valid_until == "2026-12-02T10:00:00.000000Z"
    assert "WAIVED by carl until 2026-12-02T10:00:00.000000Z: remediation plan agreed" in decision.reasons()[0]
    assert decision.to_dict()["denials"][0]["waiver"]["granted_by"] == "carl"


@pytest.mark.parametrize(
    "other",
    [
        waiver(version="6"),
        waiver(model="other_model"),
        waiver(rule="fairness.equalized_odds"),
        waiver(until=NOW),
        waiver(until=NOW - timedelta(seconds=1)),
    ],
)
def test_a_waiver_for_anything_else_or_expired_is_ignored(bundle, other):
    decision = evaluate_gate(bundle, passing_evidence(**UNFAIR), [other], now=NOW)
    assert not decision.allowed and decision.denials[0].waiver is None


def test_expiry_needs_nobody_to_act(bundle):
    evidence, granted = passing_evidence(**UNFAIR), [waiver()]
    assert evaluate_gate(bundle, evidence, granted, now=NOW + timedelta(days=9)).allowed
    assert not evaluate_gate(bundle, evidence, granted, now=NOW + timedelta(days=10)).allowed


def test_one_unwaived_rule_still_denies(bundle):
    decision = evaluate_gate(bundle, passing_evidence(**UNFAIR, auc=0.5), [waiver()], now=NOW)
    assert not decision.allowed and decision.valid_until is None
    assert {d.rule: d.waiver is not None for d in decision.denials} == {
        "fairness.disparate_impact": True,
        "performance.auc_floor": False,
    }


def test_an_unwaivable_rule_ignores_any_waiver(bundle):
    evidence = passing_evidence(validation_passed=False)
    decision = evaluate_gate(bundle, evidence, [waiver("data_quality.validation_passed")], now=NOW)
    assert not decision.allowed
    assert decision.denials[0].unwaivable and decision.denials[0].waiver is None


def test_waived_rules_set_aside_still_need_a_permit(bundle, policy_copy):
    (policy_copy / "release_gate.cedar").unlink()
    decision = evaluate_gate(PolicyBundle.load(policy_copy), passing_evidence(**UNFAIR), [waiver()], now=NOW)
    assert not decision.allowed


def test_a_rule_that_errors_while_evaluating_denies(policy_copy):
    # Cedar skips a forbid whose evaluation fails (here: integer overflow), which would let the
    # candidate through; the gate treats any evaluation error as a denial.
    with (policy_copy / "data_quality.cedar").open("a") as fh:
        fh.write(
            '\n@id("data_quality.overflowing")\n@message("m")\n'
            'forbid (principal, action == Action::"promote", resource)\n'
            "when { resource.data_age_days * 9223372036854775807 > 0 || resource.data_age_days > 100000 };\n"
        )
    decision = evaluate_gate(PolicyBundle.load(policy_copy), passing_evidence(), now=NOW)
    assert not decision.allowed and decision.denials == ()
    assert "data_quality.overflowing" in decision.errors[0] and "overflow" in decision.errors[0]


def test_reasons_name_attribute_groups_and_round_as_the_card(bundle):
    """Once the equalized-odds reason named no attribute or group and printed 0.249201127819549."""
    from governance.release.gate_evidence import _describe_odds

    sex = {
        "equalized_odds_difference": 0.3125,
        "equalized_odds_difference_ci": [0.249201127819549, 0.371],
        "odds_groups": ["F", "M"],
        "groups": {
            "F": {"true_positive_rate": 0.61, "false_positive_rate": 0.4121},
            "M": {"true_positive_rate": 0.70, "false_positive_rate": 0.0996},
        },
    }
    evidence = passing_evidence(
        equalized_odds_ci_low_max=0.249201127819549, context={"equalized_odds_ci_low_max": _describe_odds("sex", sex)}
    )
    (reason,) = evaluate_gate(bundle, evidence, now=NOW).reasons()
    assert reason.startswith("fairness.equalized_odds: ")
    assert (
        "equalized_odds_ci_low_max = 0.249, requires equalized_odds_ci_low_max <= 0.1000 (sex: equalized odds "
        "difference 0.312 [0.249, 0.371]; false positive rate F 0.412 vs M 0.100)"
    ) in reason
    assert "0.2492" not in reason


def test_a_figure_that_would_round_onto_its_threshold_keeps_four_digits(bundle):
    (reason,) = evaluate_gate(bundle, passing_evidence(auc=0.69996), now=NOW).reasons()
    assert "auc = 0.69996, requires auc >= 0.7000" in reason
