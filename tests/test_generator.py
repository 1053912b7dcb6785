"""The synthetic applications generator: seeded, vectorised, with knobs that do what they say."""

import time

import numpy as np
import pandas as pd

from governance.config import load_config
from governance.data.generator import CONTRACT, generate_applications, true_default_probability
from tests.conftest import REPO


def test_same_seed_same_frame_and_contract_holds():
    first, second = generate_applications(5000, seed=11), generate_applications(5000, seed=11)
    pd.testing.assert_frame_equal(first, second)
    assert list(first.columns) == list(CONTRACT)
    assert first["application_id"].is_unique
    for column, spec in CONTRACT.items():
        if "values" in spec:
            assert set(first[column].astype(object).unique()) <= set(spec["values"]), column
        if "min" in spec:
            assert first[column].min() >= spec["min"], column
        if "max" in spec:
            assert first[column].max() <= spec["max"], column
    assert not generate_applications(5000, seed=12).equals(first)


def test_at_least_fifteen_features_besides_protected_attributes():
    model = load_config(REPO / "governance.yaml").model("credit_scoring")
    assert len(model.feature_columns) >= 15
    assert not {"sex", "age_band", "age"} & set(model.feature_columns)


def test_one_million_rows_in_a_few_seconds():
    start = time.perf_counter()
    frame = generate_applications(1_000_000, seed=1)
    assert len(frame) == 1_000_000
    assert time.perf_counter() - start < 5


def test_outcome_follows_the_known_ground_truth_without_bias():
    frame = generate_applications(200_000, seed=5)
    from governance.data.generator import EMPLOYMENT, HOUSING

    expected = true_default_probability(
        annual_income=frame["annual_income"].to_numpy(),
        debt_to_income=frame["debt_to_income"].to_numpy(),
        utilisation=frame["credit_utilisation"].to_numpy(),
        delinquencies=frame["delinquencies_2y"].to_numpy(),
        history_years=frame["credit_history_years"].to_numpy(),
        inquiries=frame["inquiries_6m"].to_numpy(),
        employment=pd.Categorical(frame["employment_type"], categories=EMPLOYMENT.tolist()).codes,
        term=frame["loan_term_months"].to_numpy(),
        savings=frame["savings_balance"].to_numpy(),
        housing=pd.Categorical(frame["housing"], categories=HOUSING.tolist()).codes,
    )
    assert abs(frame["default"].mean() - expected.mean()) < 0.005
    top = expected > np.quantile(expected, 0.9)
    assert frame["default"][top].mean() > 2 * frame["default"].mean()


def test_bias_knob_records_more_defaults_for_women_than_their_risk_implies():
    fair, biased = generate_applications(100_000, seed=2), generate_applications(100_000, seed=2, bias=0.6)

    def gap(f):
        return f.loc[f.sex == "F", "default"].mean() - f.loc[f.sex == "M", "default"].mean()

    assert abs(gap(fair)) < 0.01
    assert gap(biased) > 0.08


def test_drift_knob_shifts_the_population():
    base, drifted = generate_applications(50_000, seed=3), generate_applications(50_000, seed=3, drift=0.8)
    assert drifted["annual_income"].median() < 0.9 * base["annual_income"].median()
    assert drifted["credit_utilisation"].mean() > base["credit_utilisation"].mean() + 0.1
    assert drifted["age"].mean() < base["age"].mean() - 4


def test_proxy_knob_makes_occupation_leak_sex():
    leaky = generate_applications(50_000, seed=4, proxy=0.9)
    share_care = leaky.loc[leaky.sex == "F", "occupation_group"].eq("care").mean()
    assert share_care > 0.85
    plain = generate_applications(50_000, seed=4)
    assert plain.loc[plain.sex == "F", "occupation_group"].eq("care").mean() < 0.25
