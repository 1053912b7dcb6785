"""Fairness figures: the weighted-cell MetricFrame equals Fairlearn's row-level one; intervals behave."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate

from governance.config import ProtectedAttribute, load_config
from governance.metrics.fairness import _bootstrap, metric_frame, protected_groups
from tests.helpers import REPO


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weighted_cells_give_the_row_level_metric_frame(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    groups = pd.Series(rng.choice(["F", "M", "X"], n, p=[0.48, 0.5, 0.02]))
    y, pred = rng.integers(0, 2, n), (rng.random(n) < 0.4).astype(int)
    rows = MetricFrame(metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                                "false_positive_rate": false_positive_rate, "count": count},
                       y_true=y, y_pred=pred, sensitive_features=groups.rename("group"))
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
    banded = model.model_copy(update={"protected_attributes": [
        ProtectedAttribute(column="age", bands=[18, 25, 40]), ProtectedAttribute(column="sex"),
        ProtectedAttribute(column="region")]})
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"sex": pd.Categorical(rng.choice(["M", "F", None], 500)),
                          "age_band": rng.choice(["18-24", "25-39", "40-59", "60+"], 500),
                          "age": np.where(rng.random(500) < 0.1, np.nan, rng.integers(16, 60, 500)),
                          "region": rng.choice([1, 2, 3], 500)}, index=range(100, 600))
    groups = protected_groups(model, frame)
    assert list(groups) == ["sex", "age_band", "sex & age_band"]
    assert groups["sex & age_band"].tolist() == [f"{s} & {a}" for s, a in zip(frame["sex"].astype(str),
                                                                                 frame["age_band"])]
    groups = protected_groups(banded, frame)
    bands = banded.protected_attributes[0].bands  # floats, as the config holds them
    age = pd.cut(frame["age"], bins=bands, right=False).astype(str)  # outside the bands or missing: "nan"
    assert groups["age"].tolist() == age.tolist() and {"[18.0, 25.0)", "[25.0, 40.0)", "nan"} == set(age)
    assert groups["region"].tolist() == frame["region"].astype(str).tolist()
    assert groups["age & sex & region"].tolist() == [" & ".join(row) for row in zip(
        age, frame["sex"].astype(str), frame["region"].astype(str))]
    assert all(g.index.equals(pd.RangeIndex(500)) for g in groups.values())
