"""The measurements of a window and the policy's reading of them, on constructed data with known answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from governance.config import load_config
from governance.digests import canonical_json
from governance.fleet import CursorError
from governance.monitoring.decision_rates import decision_rate_drift, moved_at_least, shift_interval
from governance.monitoring.drift import psi
from governance.monitoring.fairness import equal_opportunity, live_fairness
from governance.monitoring.figures import Measurement
from governance.monitoring.performance import performance
from governance.monitoring.policy import containment, judge, rejudge
from governance.monitoring.windows import Cursor
from governance.policy.bundle import PolicyBundle
from tests.helpers import REPO, SMALL_CONFIG

MODEL = load_config(SMALL_CONFIG).model("credit_scoring")


@pytest.fixture(scope="module")
def bundle() -> PolicyBundle:
    return PolicyBundle.load(REPO / "policies")


def window(bundle, **attributes) -> object:
    return judged_window(bundle, [Measurement("test", attributes, "constructed")])


def judged_window(bundle, measurements: list[Measurement], risk_tier: str = "high") -> object:
    """The policy's judgement of a 500-decision live window of credit_scoring v2 with these measurements."""
    return judge(
        bundle,
        model="credit_scoring",
        version=2,
        risk_tier=risk_tier,
        window="1-500",
        stream="live",
        decisions=500,
        measurements=measurements,
    )


def test_psi_is_zero_on_the_reference_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.beta(2, 8, 20_000)
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
    assert psi(reference, rng.beta(2, 8, 500)) < 0.05
    assert psi(reference, rng.beta(3, 6, 500)) > 0.25
    assert np.isfinite(psi(reference, np.full(500, 0.99)))  # empty bins count as a 0.01% share, not infinity


def test_a_decision_share_s_shift_is_judged_on_newcombe_s_interval():
    # Newcombe (1998), example (a): 56/70 against 48/80, method 10 at 95%: 0.0524 to 0.3339. The three outcomes'
    # intervals are Bonferroni-adjusted, so 85% for the three together is 95% for each.
    low, high = shift_interval(56 / 70, 70, 48 / 80, 80, 0.85)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    assert moved_at_least((low, high)) == moved_at_least((-high, -low)) == low  # a fall counts as a rise does
    assert moved_at_least((-0.02, 0.03)) == 0.0  # no change is within the interval


def decided(approve: int, refer: int, decline: int) -> np.ndarray:
    """Scores that the default cut-offs (approve below 0.2, decline from 0.5) decide so."""
    return np.repeat([0.1, 0.3, 0.7], [approve, refer, decline])


@pytest.mark.parametrize(
    "risk_tier, window_of_500, retrain",
    [
        ("high", decided(200, 200, 100), False),  # the reference's own shares
        ("high", decided(50, 200, 250), True),  # approvals fall from 40% to 10%, declines rise to 50%
        ("high", decided(140, 240, 120), True),  # 12 points of approvals to referrals: beyond the high tier's 5
        ("low", decided(140, 240, 120), False),  # ... within the low tier's 15
        ("low", decided(50, 200, 250), True),
    ],
)
def test_decision_rate_drift_retrains_beyond_the_tier_s_margin(bundle, risk_tier, window_of_500, retrain):
    measured = decision_rate_drift(MODEL, decided(1200, 1200, 600), window_of_500)
    judged = judged_window(bundle, [measured], risk_tier)
    assert judged.retrain.allowed is retrain and not judged.contain.allowed
    assert [f.rule for f in judged.retrain.findings] == (["monitoring.decision_rate_drift"] if retrain else [])
    assert measured.details["outcomes"]["approve"]["reference_share"] == pytest.approx(0.4)
    assert measured.attributes["decision_shift_ci_low_max"] == max(
        o["moved_at_least"] for o in measured.details["outcomes"].values()
    )


def protected(sexes: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"sex": sexes, "age_band": ["40-59"] * len(sexes)})


def test_disparate_impact_interval_and_parity_gap_from_counts():
    # 200 men approved at 60%, 200 women at 30%: disparate impact 0.5
    frame = protected(["M"] * 200 + ["F"] * 200)
    approved = np.array([1] * 120 + [0] * 80 + [1] * 60 + [0] * 140, dtype=bool)
    measured = live_fairness(MODEL, frame, approved)
    women = measured.details["attributes"]["sex"]["groups"]["F"]
    assert women["disparate_impact"] == pytest.approx(0.5)
    low, high = women["disparate_impact_ci"]
    assert low < 0.5 < high < 0.8
    assert measured.attributes["di_ci_high_min"] == pytest.approx(high)
    assert measured.attributes["parity_difference_max"] == pytest.approx(0.3)
    assert measured.details["comparisons"] == 1  # age_band has a single group: nothing to compare


def test_small_groups_are_reported_but_not_judged():
    frame = protected(["M"] * 300 + ["F"] * 20)
    approved = np.array([1] * 150 + [0] * 150 + [0] * 20, dtype=bool)
    measured = live_fairness(MODEL, frame, approved)
    assert measured.attributes == {}
    assert measured.details["attributes"]["sex"]["groups"]["F"]["judged"] is False
    assert "fairness not judged" in measured.summary


def test_more_comparisons_widen_every_interval():
    approved = np.array([1] * 120 + [0] * 80 + [1] * 90 + [0] * 110, dtype=bool)
    one = live_fairness(MODEL, protected(["M"] * 200 + ["F"] * 200), approved)
    ages = ["40-59"] * 200 + ["25-39"] * 100 + ["60+"] * 100
    several = live_fairness(MODEL, pd.DataFrame({"sex": ["M"] * 200 + ["F"] * 200, "age_band": ages}), approved)
    assert several.details["comparisons"] == 3
    narrow = one.details["attributes"]["sex"]["groups"]["F"]["disparate_impact_ci"]
    wide = several.details["attributes"]["sex"]["groups"]["F"]["disparate_impact_ci"]
    assert wide[0] < narrow[0] and wide[1] > narrow[1]


def test_equal_opportunity_compares_approval_among_the_favourable_outcomes_only():
    frame = protected(["M"] * 300 + ["F"] * 300)
    approved = np.array(([1] * 150 + [0] * 150) + ([1] * 60 + [0] * 240), dtype=bool)
    good = np.array(([1] * 200 + [0] * 100) + ([1] * 200 + [0] * 100), dtype=bool)
    measured = equal_opportunity(MODEL, frame, approved, good)
    women = measured.details["attributes"]["sex"]["groups"]["F"]
    assert women["rows"] == 200 and women["gap"] == pytest.approx(0.30 - 0.75)
    assert 0.3 < measured.attributes["equal_opportunity_ci_low_max"] < 0.45


def test_performance_needs_the_card_and_both_outcomes():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    assert performance(None, "no sealed pack", y, rng.random(400), 0.95).attributes == {}
    assert (
        "need 10 of each"
        in performance({"auc": 0.8, "ks": 0.5}, None, np.zeros(400, int), rng.random(400), 0.95).summary
    )
    ranked = performance({"auc": 0.8, "ks": 0.5}, None, y, y + rng.normal(0, 0.3, 400), 0.95)
    assert ranked.attributes["auc_drop_ci_low"] < 0 and ranked.attributes["ks_drop_ci_low"] < 0
    noise = performance({"auc": 0.8, "ks": 0.5}, None, y, rng.random(400), 0.95)
    assert noise.attributes["auc_drop_ci_low"] > 0.2 and noise.attributes["ks_drop_ci_low"] > 0.2


def test_the_policy_reads_figures_rounded_towards_alerting(bundle):
    assert not window(bundle, score_psi=0.0999).alert
    borderline = window(bundle, score_psi=0.09999)  # rounds up to 0.1000: retrain
    assert borderline.retrain.allowed and not borderline.contain.allowed
    assert borderline.retrain.findings[0].conditions == ("score_psi = 0.1000 (fires when >= 0.1000)",)
    assert not window(bundle, di_ci_high_min=0.80004, di_ci_low_max=1.0).alert  # rounds down to 0.8000
    unfair = window(bundle, di_ci_high_min=0.79999, di_ci_low_max=1.0)  # rounds down to 0.7999: contain
    assert unfair.contain.allowed and [f.rule for f in unfair.contain.findings] == ["monitoring.disparate_impact"]
    assert window(bundle).alert is False  # nothing measured calls for nothing


def test_the_policy_chooses_how_to_contain(bundle):
    harmful = window(bundle, score_psi=0.4)
    assert [f.rule for f in harmful.contain.findings] == ["monitoring.score_drift_severe"]
    assert [v.action for v in containment(bundle, harmful, rollback_target_passes=True)] == ["auto_rollback"]
    assert [v.action for v in containment(bundle, harmful, rollback_target_passes=False)] == ["auto_disable"]


def features_judged(bundle, risk_tier: str = "high", **features: dict) -> object:
    return judged_window(
        bundle, [Measurement("data_drift", {"drift_share": 0.0}, "constructed", {}, features)], risk_tier
    )


def test_one_important_feature_drifting_strongly_calls_for_retraining_by_risk_tier(bundle):
    def feature(distance: float, importance: float, rank: int = 1) -> dict:
        return {"method": "wasserstein", "drift_distance": distance, "importance": importance, "importance_rank": rank}

    strong = features_judged(bundle, annual_income=feature(1.02, 0.25), dependents=feature(0.01, 0.0, 17))
    assert strong.retrain.allowed and not strong.contain.allowed
    (finding,) = strong.retrain.findings
    assert finding.rule == "monitoring.important_feature_drift"
    assert finding.conditions == (
        "annual_income: importance = 0.2500 (fires when >= 0.1000)",
        "annual_income: drift_distance = 1.0200 (fires when >= 0.3000)",
    )
    assert not features_judged(bundle, dependents=feature(1.02, 0.01, 17)).alert  # moved, but hardly used
    assert not features_judged(bundle, annual_income=feature(0.29, 0.25)).alert  # used, but moved little
    assert not features_judged(bundle, "low", annual_income=feature(0.5, 0.25)).alert  # the low tier's 0.75
    unknown = {"method": "wasserstein", "drift_distance": 5.0}  # no sealed explainability report: no importance
    assert not features_judged(bundle, annual_income=unknown).alert


def test_a_recorded_judgement_with_whole_number_figures_is_judged_again(bundle):
    """Canonical JSON writes 0.0 as 0: a feature the model never uses (importance 0) or that did not move
    (distance 0) must still be judged as a decimal when remediation re-reads the report."""
    recorded = json.loads(
        canonical_json(
            features_judged(
                bundle,
                dependents={"method": "wasserstein", "drift_distance": 0.0, "importance": 0.0, "importance_rank": 17},
            ).to_dict()
        )
    )
    assert recorded["measurements"][0]["features"]["dependents"]["importance"] == 0
    assert rejudge(bundle, recorded).retrain.allowed is False


def test_cursors_round_trip_and_refuse_what_they_did_not_write():
    cursor = Cursor.parse(None, ("live", "labelled"))
    assert cursor.positions == {"live": 0, "labelled": 0}
    moved = cursor.moved("live", 1500)
    assert Cursor.parse(moved.dumps(), ("live", "labelled")) == moved
    for stored in ("1500", '{"live": -1}', '{"offline": 3}', "not json"):
        with pytest.raises(CursorError, match="is not a monitoring cursor"):
            Cursor.parse(stored, ("live",))


def test_a_window_without_the_configured_reference_group_judges_nothing_against_another_group():
    # Reference for age_band is 40-59; this window has none of it. Comparing 60+ with 25-39 instead would
    # find disparate impact 0.5 against a baseline nobody configured.
    ages = ["25-39"] * 200 + ["60+"] * 200
    frame = pd.DataFrame({"sex": ["M", "F"] * 200, "age_band": ages})
    approved = np.array([1] * 120 + [0] * 80 + [1] * 60 + [0] * 140, dtype=bool)
    measured = live_fairness(MODEL, frame, approved)
    age = measured.details["attributes"]["age_band"]
    assert age["reference_group"] == "40-59" and age["reference_absent"] is True
    assert all(not g["judged"] and "disparate_impact" not in g for g in age["groups"].values())
    assert measured.details["comparisons"] == 1  # sex only: M and F are both present, split evenly by age
    assert measured.attributes["parity_difference_max"] < 0.05  # the 0.3 age gap is not counted as a sex gap
    assert measured.summary.endswith("(reference group absent from the window: age_band '40-59')")

    only_ages = pd.DataFrame({"sex": ["F"] * 400, "age_band": ages})
    nothing = live_fairness(MODEL, only_ages, approved)
    assert nothing.attributes == {}
    assert "reference group absent from the window: sex 'M', age_band '40-59'" in nothing.summary
    good = np.ones(400, dtype=bool)
    opportunity = equal_opportunity(MODEL, only_ages, approved, good)
    assert opportunity.attributes == {} and "age_band '40-59'" in opportunity.summary
    assert "gap" not in opportunity.details["attributes"]["age_band"]["groups"]["60+"]


def test_a_labelled_window_without_a_favourable_outcome_is_not_judged_for_equal_opportunity():
    unreferenced = MODEL.model_copy(
        update={"protected_attributes": [a.model_copy(update={"reference": None}) for a in MODEL.protected_attributes]}
    )
    frame = protected(["M"] * 200 + ["F"] * 200)
    for model in (MODEL, unreferenced):  # with no reference configured, the largest group of none was an error
        measured = equal_opportunity(model, frame, np.zeros(400, dtype=bool), np.zeros(400, dtype=bool))
        assert measured.attributes == {}
        assert measured.summary == (
            "equal opportunity not judged: no favourable outcome among the window's 400 labelled decisions"
        )
