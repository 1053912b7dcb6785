"""Performance and proxy figures equal scikit-learn's own on the same rows (ties and missing values included)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from governance.metrics.explainability import proxy_strengths
from governance.metrics.performance import discrimination


@pytest.mark.parametrize("seed", [1, 2])
def test_discrimination_equals_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 4000)
    score = np.round(rng.random(4000) * 0.5 + 0.3 * y, 2)  # rounded: many tied scores
    fpr, tpr, _ = roc_curve(y, score)
    measured = discrimination(y, score)
    assert measured["auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert measured["gini"] == pytest.approx(2 * roc_auc_score(y, score) - 1, abs=1e-12)
    assert measured["ks"] == pytest.approx(np.max(tpr - fpr))


def _by_hand(values: pd.Series, labels: pd.Series) -> float:
    """The definition: max over groups of |2 AUC - 1|, a category scored by its share of the group."""
    best = 0.0
    for group in labels.unique():
        member = (labels == group).to_numpy()
        x = values if pd.api.types.is_numeric_dtype(values) else values.map(
            pd.Series(member).groupby(values.to_numpy()).mean())
        best = max(best, abs(2 * roc_auc_score(member, x.to_numpy(dtype=float)) - 1))
    return round(best, 4)


def test_proxy_strength_equals_the_auc_definition():
    rng = np.random.default_rng(5)
    n = 3000
    sex = pd.Series(rng.choice(["F", "M"], n))
    band = pd.Series(rng.choice(["18-24", "25-39", "40-59", "60+"], n))
    features = pd.DataFrame({
        "height": np.where(sex == "F", 165, 178) + rng.integers(-15, 15, n),  # integers: tied values
        "noise": rng.random(n),
        "existing_customer": rng.random(n) < np.where(sex == "F", 0.3, 0.5),  # boolean
        "occupation": pd.Categorical(np.where(rng.random(n) < 0.7, np.where(sex == "F", "care", "trade"),
                                              rng.choice(["care", "trade", "office"], n))),
    })
    measured = proxy_strengths(features, {"sex": sex, "age_band": band})
    for feature in features.columns:
        assert measured[feature] == {"sex": _by_hand(features[feature], sex),
                                     "age_band": _by_hand(features[feature], band)}, feature
    assert measured["height"]["sex"] > 0.6 and measured["noise"]["sex"] < 0.1


def test_missing_values_count_as_information():
    rng = np.random.default_rng(6)
    sex = pd.Series(rng.choice(["F", "M"], 2000))
    income = pd.Series(np.where(sex == "F", 30_000.0, 45_000.0) + rng.normal(0, 9_000, 2000))
    income[::5] = np.nan
    only_for_women = pd.Series(np.where(sex == "F", np.nan, 1.0))  # missing exactly when female
    features = pd.DataFrame({"income": income, "only_for_women": only_for_women})
    measured = proxy_strengths(features, {"sex": sex})
    # missing ranks lowest, or highest, whichever separates more: as filling it below or above every value
    low, high = income.fillna(income.min() - 1), income.fillna(income.max() + 1)
    assert measured["income"]["sex"] == max(_by_hand(low, sex), _by_hand(high, sex))
    assert measured["only_for_women"]["sex"] == 1.0
    assert proxy_strengths(pd.DataFrame({"blank": [np.nan] * 2000}), {"sex": sex})["blank"]["sex"] == 0.0
