"""SHAP attributions add up to each estimator's own output, categorical splits included, or are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from governance import training
from governance.config import load_config
from governance.data.generator import generate_applications
from governance.errors import GovernanceError
from governance.metrics.explainability import Explainer
from tests.helpers import REPO

CATEGORICAL = "employment_type"


@pytest.fixture(scope="module")
def data():
    model = load_config(REPO / "governance.yaml").model("credit_scoring")
    split = training.split(model, generate_applications(12_000, seed=3))
    rows = split.test.head(300).copy()
    rows[CATEGORICAL] = rows[CATEGORICAL].astype(object)  # as the scoring API receives it
    rows.loc[rows.index[:10], CATEGORICAL] = "never-seen"  # the encoder's unknown code (-1)
    rows.loc[rows.index[10:20], CATEGORICAL] = None  # its missing code (-2)
    rows.loc[rows.index[20:30], "annual_income"] = np.nan
    return model, split.train, rows


def fitted(model, train, kind: str, **params):
    tuned = model.model_copy(update={"estimator": model.estimator.model_copy(update={"kind": kind, "params": params})})
    return tuned, training.fit(tuned, train)


def model_output(pipeline, rows: pd.DataFrame, features: list[str]) -> np.ndarray:
    transformed = pipeline.named_steps["prep"].transform(rows[features])
    estimator = pipeline.named_steps["model"]
    if hasattr(estimator, "decision_function"):
        return estimator.decision_function(transformed)
    return estimator.predict_proba(transformed)[:, 1]


@pytest.mark.parametrize("kind, params", [
    ("hist_gradient_boosting", {"max_iter": 60, "random_state": 0}),
    ("random_forest", {"n_estimators": 30, "random_state": 0}),
    ("logistic_regression", {}),
])
def test_attributions_add_up_to_the_model_output_with_unknown_and_missing_values(data, kind, params):
    model, train, rows = data
    tuned, pipeline = fitted(model, train, kind, **params)
    if kind == "logistic_regression":  # it has no missing-value handling (the contract has no nullable column)
        rows = rows.drop(rows.index[20:30])
    explainer = Explainer(pipeline, tuned.feature_columns, train.head(200))
    values = explainer.attributions(rows)
    assert list(values.columns) == tuned.feature_columns and values.index.equals(rows.index)
    expected = np.ravel(explainer._shap.expected_value)[-1]
    np.testing.assert_allclose(values.sum(axis=1) + expected, model_output(pipeline, rows, tuned.feature_columns),
                               atol=1e-9)
    assert values[CATEGORICAL].abs().sum() > 0
    assert explainer.units == ("probability" if kind == "random_forest" else "log-odds")


def test_categorical_splits_are_explained_as_category_sets(data):
    """The gradient-boosted model splits employment type on sets of categories; SHAP's own conversion reads
    those splits as thresholds (shap/shap#3436), and its attributions no longer add up to the output."""
    model, train, rows = data
    _, pipeline = fitted(model, train, "hist_gradient_boosting", max_iter=60, random_state=0)
    estimator = pipeline.named_steps["model"]
    splits = [p.nodes for (p,) in estimator._predictors]
    assert any((n["is_categorical"].astype(bool) & ~n["is_leaf"].astype(bool)).any() for n in splits)

    explainer = Explainer(pipeline, model.feature_columns)
    ensemble = explainer._shap.model
    ensemble.threshold_types[:] = 0  # what shap does on its own: every split a threshold
    with pytest.raises(GovernanceError, match=r"attributions do not add up to the HistGradientBoostingClassifier's "
                                              r"scores on \d+ of 300 rows \(largest gap"):
        explainer.attributions(rows)


def test_too_many_categories_for_shap_are_refused_by_name(data):
    model, train, _ = data
    wide = train.copy()
    wide[CATEGORICAL] = pd.Categorical((np.arange(len(wide)) % 30).astype(str))  # 30 categories
    _, pipeline = fitted(model, wide, "hist_gradient_boosting", max_iter=5, random_state=0)
    with pytest.raises(GovernanceError, match=f"feature '{CATEGORICAL}' has 30 categories; SHAP explains "
                                              "categorical splits of at most 24"):
        Explainer(pipeline, model.feature_columns)
