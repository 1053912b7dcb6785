"""Performance and proxy figures equal scikit-learn's own on the same rows (ties and missing values included)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from governance.config import Decisioning
from governance.metrics.explainability import proxy_strengths
from governance.metrics.performance import ROC_POINTS, discrimination, performance_report


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
    assert discrimination(np.ones(10), score[:10]) == {"auc": None, "gini": None, "ks": None}
    assert discrimination(np.array([]), np.array([])) == {"auc": None, "gini": None, "ks": None}
    with pytest.raises(ValueError, match="1 of 3 scores are NaN"):
        discrimination(np.array([0, 1, 0]), np.array([0.1, np.nan, 0.3]))


def test_performance_report_by_group_equals_scikit_learn_on_each_group():
    """Groups are read from the one overall sort: each must still equal scikit-learn's own on its rows."""
    rng = np.random.default_rng(3)
    n = 6000
    y = rng.integers(0, 2, n).astype(np.int8)
    score = np.round(rng.random(n) * 0.5 + 0.2 * y, 2)  # many ties, across and within groups
    band = pd.Series(rng.choice(["18-24", "25-39"], n, p=[0.3, 0.7]))
    band[np.flatnonzero(y == 0)[:5]] = "60+"  # a group without events: no AUC, as scikit-learn refuses it
    report = performance_report(y, score, {"age_band": band}, Decisioning(approve_below=0.3, decline_at_or_above=0.6))
    fpr, tpr, _ = roc_curve(y, score)
    assert report["auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert report["roc_curve"]["tpr"] == np.interp(np.linspace(0, 1, ROC_POINTS), fpr, tpr).round(4).tolist()
    for group, figures in report["by_group"]["age_band"].items():
        member = (band == group).to_numpy()
        assert figures["rows"] == member.sum() and figures["event_rate"] == pytest.approx(y[member].mean())
        if len(np.unique(y[member])) < 2:
            assert figures["auc"] is None and figures["ks"] is None
            continue
        fpr, tpr, _ = roc_curve(y[member], score[member])
        assert figures["auc"] == pytest.approx(roc_auc_score(y[member], score[member]), abs=1e-12), group
        assert figures["ks"] == pytest.approx(np.max(tpr - fpr), abs=1e-12), group
    assert report["by_group"]["age_band"]["60+"]["auc"] is None
    bins = report["calibration"]["bins"]
    assert [b["rows"] for b in bins] == [600] * 10 and bins[0]["mean_score"] <= bins[-1]["mean_score"]


def _by_hand(values: pd.Series, labels: pd.Series) -> float:
    """The definition: max over groups of |2 AUC - 1|, a category scored by its share of the group."""
    best = 0.0
    for group in labels.unique():
        member = (labels == group).to_numpy()
        x = (
            values
            if pd.api.types.is_numeric_dtype(values)
            else values.map(pd.Series(member).groupby(values.to_numpy()).mean())
        )
        best = max(best, abs(2 * roc_auc_score(member, x.to_numpy(dtype=float)) - 1))
    return round(best, 4)


def test_proxy_strength_equals_the_auc_definition():
    rng = np.random.default_rng(5)
    n = 3000
    sex = pd.Series(rng.choice(["F", "M"], n))
    band = pd.Series(rng.choice(["18-24", "25-39", "40-59", "60+"], n))
    features = pd.DataFrame(
        {
            "height": np.where(sex == "F", 165, 178) + rng.integers(-15, 15, n),  # integers: tied values
            "noise": rng.random(n),
            "existing_customer": rng.random(n) < np.where(sex == "F", 0.3, 0.5),  # boolean
            "occupation": pd.Categorical(
                np.where(
                    rng.random(n) < 0.7,
                    np.where(sex == "F", "care", "trade"),
                    rng.choice(["care", "trade", "office"], n),
                )
            ),
        }
    )
    measured = proxy_strengths(features, {"sex": sex, "age_band": band})
    for feature in features.columns:
        assert measured[feature] == {
            "sex": _by_hand(features[feature], sex),
            "age_band": _by_hand(features[feature], band),
        }, feature
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
