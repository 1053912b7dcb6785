"""Fairness figures: the weighted-cell MetricFrame equals Fairlearn's row-level one; intervals behave."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate

from governance.config import ProtectedAttribute, load_config
from governance.errors import GovernanceError
from governance.metrics.fairness import _bootstrap, _ci, fairness_report, metric_frame, protected_groups
from governance.release.gate_evidence import _disparate_impact
from tests.helpers import REPO


def report(sex: list[str], favourable: list[int], approved: list[int], reference: str | None = "M") -> dict:
    """The fairness report of rows with only `sex` gated, M as its configured reference."""
    model = load_config(REPO / "governance.yaml").model("credit_scoring")
    model = model.model_copy(update={"protected_attributes": [ProtectedAttribute(column="sex", reference=reference)]})
    groups = {"sex": pd.Series(sex)}
    return fairness_report(model, np.array(favourable), np.array(approved), groups)["attributes"]["sex"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weighted_cells_give_the_row_level_metric_frame(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    groups = pd.Series(rng.choice(["F", "M", "X"], n, p=[0.48, 0.5, 0.02]))
    y, pred = rng.integers(0, 2, n), (rng.random(n) < 0.4).astype(int)
    rows = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "count": count,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=groups.rename("group"),
    )
    cells = metric_frame(groups, y, pred)
    assert list(cells.by_group.index) == list(rows.by_group.index)
    np.testing.assert_allclose(cells.by_group.to_numpy(float), rows.by_group.to_numpy(float))
    np.testing.assert_allclose(cells.difference().to_numpy(float), rows.difference().to_numpy(float))
    np.testing.assert_allclose(cells.ratio().to_numpy(float), rows.ratio().to_numpy(float))


def test_bootstrap_intervals_cover_the_truth_and_narrow_with_more_rows():
    rng = np.random.default_rng(0)
    widths = []
    for n in (2_000, 200_000):
        codes = rng.integers(0, 2, n)
        y = rng.integers(0, 2, n).astype(np.int8)
        pred = (rng.random(n) < np.where(codes == 0, 0.6, 0.45)).astype(np.int8)
        rates = _bootstrap(codes, 2, y, pred, 400, rng)["selection_rate"]
        low, high = np.percentile(rates[:, 1] / rates[:, 0], [2.5, 97.5])
        assert low < 0.45 / 0.6 < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 5


def test_group_labels_are_each_rows_values_as_text_joined_for_intersections():
    model = load_config(REPO / "governance.yaml").model("credit_scoring")
    banded = model.model_copy(
        update={
            "protected_attributes": [
                ProtectedAttribute(column="age", bands=[18, 25, 40]),
                ProtectedAttribute(column="sex"),
                ProtectedAttribute(column="region"),
            ]
        }
    )
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "sex": pd.Categorical(rng.choice(["M", "F", None], 500)),
            "age_band": rng.choice(["18-24", "25-39", "40-59", "60+"], 500),
            "age": np.where(rng.random(500) < 0.1, np.nan, rng.integers(16, 60, 500)),
            "region": rng.choice([1, 2, 3], 500),
        },
        index=range(100, 600),
    )
    groups = protected_groups(model, frame)
    assert list(groups) == ["sex", "age_band", "sex & age_band"]
    assert groups["sex & age_band"].tolist() == [
        f"{s} & {a}" for s, a in zip(frame["sex"].astype(str), frame["age_band"])
    ]
    groups = protected_groups(banded, frame)
    bands = banded.protected_attributes[0].bands  # floats, as the config holds them
    age = pd.cut(frame["age"], bins=bands, right=False).astype(str)  # outside the bands or missing: "nan"
    assert groups["age"].tolist() == age.tolist() and {"[18.0, 25.0)", "[25.0, 40.0)", "nan"} == set(age)
    assert groups["region"].tolist() == frame["region"].astype(str).tolist()
    assert groups["age & sex & region"].tolist() == [
        " & ".join(row) for row in zip(age, frame["sex"].astype(str), frame["region"].astype(str))
    ]
    assert all(g.index.equals(pd.RangeIndex(500)) for g in groups.values())


def test_a_reference_group_without_approvals_makes_disparate_impact_infinite_and_fails_the_gate():
    """It had made every ratio undefined: the intervals came out empty and the gate saw a neutral 1.0."""
    rng = np.random.default_rng(5)
    n = 2000
    sex = ["M"] * (n // 2) + ["F"] * (n // 2)
    approved = np.r_[np.zeros(n // 2, int), (rng.random(n // 2) < 0.5).astype(int)]
    figures = report(sex, rng.integers(0, 2, n).tolist(), approved.tolist())
    female = figures["groups"]["F"]
    assert female["disparate_impact"] == "inf" and female["disparate_impact_ci"] == ["inf", "inf"]  # JSON text
    (interval,) = _disparate_impact({"gated_attributes": ["sex"], "attributes": {"sex": figures}})
    assert interval["low"] == float("inf")  # the gate's di_ci_low_max: far above the 1.25 the policy allows


def test_a_small_reference_group_leaves_the_upper_bound_wide_from_its_exact_interval():
    """2 approvals in 20 rows: the reference's exact interval reaches down to about 0.012, so no group can be
    failed for a ratio below the band over it (resamples that approve none of it had made the bound infinite)."""
    rng = np.random.default_rng(6)
    sex = ["M"] * 20 + ["F"] * 2000
    approved = [1, 1] + [0] * 18 + (rng.random(2000) < 0.5).astype(int).tolist()
    figures = report(sex, rng.integers(0, 2, 2020).tolist(), approved)
    female, male = figures["groups"]["F"], figures["groups"]["M"]
    point, (low, high) = female["disparate_impact"], female["disparate_impact_ci"]
    assert male["small_group"] and male["selection_rate_interval"] == "clopper-pearson"
    assert male["selection_rate_ci"][0] == pytest.approx(0.0123, abs=1e-4)
    assert np.isfinite(point) and low < point < 25 < high
    assert high == pytest.approx(female["selection_rate_ci"][1] / male["selection_rate_ci"][0])


def test_a_small_group_is_judged_on_its_exact_interval_not_a_zero_width_bootstrap():
    """The outsider's case: 6 rows, all approved, against a reference approving about 74 %. Every bootstrap
    resample of those 6 rows approves all 6, so its interval had zero width ([1.312, 1.386]) and the gate denied
    on a certainty the data do not give; 6 of 6 is [0.54, 1] exactly. A small group whose exact interval still
    lies outside the band is failed, and large groups keep their bootstrap intervals."""
    rng = np.random.default_rng(8)
    sex = ["M"] * 2000 + ["F"] * 2000 + ["X"] * 6 + ["Z"] * 40
    approved = np.r_[(rng.random(4000) < 0.74).astype(int), np.ones(6, int), np.zeros(40, int)]
    figures = report(sex, rng.integers(0, 2, 4046).tolist(), approved.tolist())
    tiny = figures["groups"]["X"]
    assert tiny["rows"] == 6 and tiny["selection_rate_ci"] == [pytest.approx(0.5407, abs=1e-4), 1.0]
    assert tiny["small_group"] and tiny["selection_rate_interval"] == "clopper-pearson"
    low, high = tiny["disparate_impact_ci"]
    assert low < 1.25 < tiny["disparate_impact"] < high  # compatible with the band: not failed
    assert figures["groups"]["Z"]["disparate_impact_ci"][1] < 0.8  # 0 of 40 approved: failed even so
    female = figures["groups"]["F"]
    assert not female["small_group"] and female["selection_rate_interval"] == "bootstrap"
    assert 0 < female["disparate_impact_ci"][1] - female["disparate_impact_ci"][0] < 0.15

    intervals = _disparate_impact({"gated_attributes": ["sex"], "attributes": {"sex": figures}})
    highest_low = max(intervals, key=lambda i: i["low"])
    assert highest_low["group"] != "X" and highest_low["low"] < 1.25  # the gate's di_ci_low_max


def test_a_rate_a_group_cannot_have_is_undefined_and_left_out_of_the_odds_figures():
    """A group with no favourable outcomes has no true positive rate (Fairlearn says 0.0). No group here has
    30 rows of each outcome, so the odds figures read every group: the undefined rate must not count."""
    rng = np.random.default_rng(7)
    sex = ["M"] * 40 + ["F"] * 40 + ["X"] * 20
    favourable = np.r_[rng.integers(0, 2, 80), np.zeros(20, int)]
    approved = (rng.random(100) < 0.4).astype(int)
    figures = report(sex, favourable.tolist(), approved.tolist())
    assert figures["odds_groups"] == ["F", "M", "X"]
    assert figures["groups"]["X"]["true_positive_rate"] is None
    assert figures["groups"]["X"]["false_positive_rate"] is not None
    tpr = [figures["groups"][g]["true_positive_rate"] for g in ("M", "F")]
    assert figures["equal_opportunity_difference"] == pytest.approx(max(tpr) - min(tpr), abs=1e-12)


def test_an_interval_next_to_an_infinite_resample_is_never_nan():
    """numpy's interpolation gives NaN at a whole-number position next to an infinite value."""
    assert _ci(np.array([1.0, 2.0, np.inf]), 50, 50) == [2.0, 2.0]
    assert _ci(np.array([1.0, 2.0, np.inf]), 75, 100) == [float("inf"), float("inf")]
    assert _ci(np.array([np.nan, 1.0, 3.0]), 50, 50) == [2.0, 2.0]


def test_a_configured_reference_missing_from_the_test_set_is_refused_by_name():
    with pytest.raises(
        GovernanceError,
        match=r"protected attribute 'sex': reference group 'M' is not among the "
        r"groups of the test set \(F, X\)",
    ):
        report(["F", "X"] * 50, [0, 1] * 50, [1, 0] * 50)


def test_missing_protected_values_form_one_group_whatever_marks_them_missing():
    model = load_config(REPO / "governance.yaml").model("credit_scoring")
    frame = pd.DataFrame(
        {
            "sex": pd.Series(["M", None, "F", np.nan, "M"], dtype=object),
            "age_band": ["18-24", "25-39", "25-39", "60+", "18-24"],
        }
    )
    groups = protected_groups(model, frame)
    assert groups["sex"].tolist() == ["M", "nan", "F", "nan", "M"]
    assert groups["sex & age_band"].tolist()[1:4] == ["nan & 25-39", "F & 25-39", "nan & 60+"]
    coded = pd.DataFrame({"sex": [1.0, np.nan, 2.0], "age_band": ["18-24"] * 3})  # integer codes, one missing
    assert protected_groups(model, coded)["sex"].tolist() == ["1", "nan", "2"]
