"""SHAP attributions add up to each estimator's own output, categorical splits included, or are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from scipy.special import expit
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

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
    transformed = pipeline.named_steps["prep"].transform(training.feature_frame(rows, features))
    estimator = pipeline.named_steps["model"]
    if hasattr(estimator, "decision_function"):
        return estimator.decision_function(transformed)
    return estimator.predict_proba(transformed)[:, 1]


@pytest.mark.parametrize(
    "kind, params",
    [
        ("hist_gradient_boosting", {"max_iter": 60, "random_state": 0}),
        ("random_forest", {"n_estimators": 30, "random_state": 0}),
        ("logistic_regression", {}),
    ],
)
def test_attributions_add_up_to_the_model_output_with_unknown_and_missing_values(data, kind, params):
    model, train, rows = data
    tuned, pipeline = fitted(model, train, kind, **params)
    if kind == "logistic_regression":  # it has no missing-value handling (the contract has no nullable column)
        rows = rows.drop(rows.index[20:30])
    explainer = Explainer(pipeline, tuned.feature_columns, train.head(200))
    explanation = explainer.explain(rows)
    scores, values = explanation.scores, explanation.attributions
    assert explanation.faithful.all() and explanation.gaps.max() < 1e-12
    # What serving answers with (a forest sums its trees on threads: the last bit may differ between calls).
    np.testing.assert_allclose(scores, training.score(pipeline, tuned, rows), rtol=0, atol=1e-12)
    assert list(values.columns) == tuned.feature_columns and values.index.equals(rows.index)
    expected = np.ravel(explainer._shap.expected_value)[-1]
    np.testing.assert_allclose(
        values.sum(axis=1) + expected, model_output(pipeline, rows, tuned.feature_columns), atol=1e-9
    )
    assert values[CATEGORICAL].abs().sum() > 0
    assert explainer.units == ("probability" if kind == "random_forest" else "log-odds")


def test_shap_alone_misreads_categorical_splits_and_the_check_refuses_what_it_says(data):
    """SHAP's own conversion reads the model's category-set splits as thresholds (shap/shap#3436)."""
    model, train, rows = data
    _, pipeline = fitted(model, train, "hist_gradient_boosting", max_iter=60, random_state=0)
    estimator, prep = pipeline.named_steps["model"], pipeline.named_steps["prep"]
    assert any(
        (p.nodes["is_categorical"].astype(bool) & ~p.nodes["is_leaf"].astype(bool)).any()
        for (p,) in estimator._predictors
    )
    transformed = prep.transform(rows[model.feature_columns])
    unpatched = shap.TreeExplainer(estimator)
    gaps = np.abs(
        unpatched.shap_values(transformed).sum(axis=1)
        + np.ravel(unpatched.expected_value)[-1]
        - estimator.decision_function(transformed)
    )
    assert gaps.max() > 0.1

    explainer = Explainer(pipeline, model.feature_columns)
    explainer._shap, explainer._categorical = unpatched, None  # SHAP alone, on the pipeline's own codes
    explained = expit(unpatched.shap_values(transformed).sum(axis=1) + np.ravel(unpatched.expected_value)[-1])
    misstated = np.abs(explained - estimator.predict_proba(transformed)[:, 1]) > 1e-9
    assert misstated.any()
    with pytest.raises(
        GovernanceError,
        match=rf"attributions do not add up to the HistGradientBoostingClassifier's "
        rf"scores on {misstated.sum()} of 300 rows \(largest gap",
    ):
        explainer.attributions(rows)
    np.testing.assert_array_equal(explainer.explain(rows).faithful, ~misstated)  # row by row, as serving reads it


def test_a_category_missing_in_training_is_one_of_the_models_own_categories(data):
    """The estimator re-encodes the categories it saw, a missing one among them: codes shift by one."""
    model, train, rows = data
    gappy = train.copy()
    gappy[CATEGORICAL] = gappy[CATEGORICAL].astype(object)
    gappy.loc[gappy.index[::40], CATEGORICAL] = np.nan  # as read from CSV: the encoder's missing code, -2
    _, pipeline = fitted(model, gappy, "hist_gradient_boosting", max_iter=60, random_state=0)
    values = Explainer(pipeline, model.feature_columns).attributions(rows)  # rows: missing and unknown too
    expected = np.ravel(Explainer(pipeline, model.feature_columns)._shap.expected_value)[-1]
    np.testing.assert_allclose(
        values.sum(axis=1) + expected, model_output(pipeline, rows, model.feature_columns), atol=1e-9
    )


def test_a_missing_category_sent_as_null_is_scored_and_explained_as_in_training(data):
    """JSON's null arrives as None; the training snapshot's missing value is NaN. The category encoder took
    None for an unknown category of its own, so the same applicant was scored another way in serving."""
    model, train, rows = data
    gappy = train.copy()
    gappy[CATEGORICAL] = gappy[CATEGORICAL].astype(object)
    gappy.loc[gappy.index[::40], CATEGORICAL] = np.nan
    _, pipeline = fitted(model, gappy, "hist_gradient_boosting", max_iter=60, random_state=0)
    as_nan, as_none = rows.iloc[:40].copy(), rows.iloc[:40].copy()
    as_nan[CATEGORICAL] = pd.Series(np.nan, index=as_nan.index, dtype=object)
    as_none[CATEGORICAL] = pd.Series([None] * len(as_none), index=as_none.index, dtype=object)
    assert as_none[CATEGORICAL].map(lambda v: v is None).all()
    np.testing.assert_array_equal(training.score(pipeline, model, as_none), training.score(pipeline, model, as_nan))
    explainer = Explainer(pipeline, model.feature_columns)
    pd.testing.assert_frame_equal(explainer.attributions(as_none), explainer.attributions(as_nan))


def test_attributions_follow_each_feature_whatever_the_column_order(data):
    """The estimator puts its categorical columns first; attributions come back to the pipeline's order."""
    model, train, rows = data
    _, categorical_first = fitted(model, train, "hist_gradient_boosting", max_iter=40, random_state=0)
    categorical = training.categorical_features(model)
    numeric = [c for c in model.feature_columns if c not in categorical]
    encoder = categorical_first.named_steps["prep"].named_transformers_["categorical"]
    prep = ColumnTransformer(
        [("numeric", "passthrough", numeric), ("categorical", clone(encoder), categorical)],
        verbose_feature_names_out=False,
    )
    estimator = clone(categorical_first.named_steps["model"]).set_params(
        categorical_features=list(range(len(numeric), len(numeric) + len(categorical)))
    )
    numeric_first = Pipeline([("prep", prep), ("model", estimator)])
    numeric_first.fit(train[model.feature_columns], training.unfavourable(model, train))

    expected = Explainer(categorical_first, model.feature_columns).attributions(rows)
    measured = Explainer(numeric_first, model.feature_columns).attributions(rows)
    pd.testing.assert_frame_equal(measured, expected, atol=1e-9)


def test_too_many_categories_for_shap_are_refused_by_name(data):
    model, train, _ = data
    wide = train.copy()
    wide[CATEGORICAL] = pd.Categorical((np.arange(len(wide)) % 30).astype(str))  # 30 categories
    _, pipeline = fitted(model, wide, "hist_gradient_boosting", max_iter=5, random_state=0)
    with pytest.raises(
        GovernanceError,
        match=f"feature '{CATEGORICAL}' has 30 categories; SHAP explains categorical splits of at most 24",
    ):
        Explainer(pipeline, model.feature_columns)
