"""Training a governed model: split, estimator pipeline, fit.

The score is the probability of the unfavourable outcome (for credit: default).
The train/test split is a deterministic function of each row's id, so any
version's test set can be rebuilt from its data snapshot alone, and a candidate
and the champion are compared on the same rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from governance.config import GovernedModel

# Types skops must be told to trust when MLflow saves each estimator kind. A fixed
# allow-list (never "whatever the file contains"); artifacts are digest-checked before loading.
TRUSTED_TYPES = {
    "hist_gradient_boosting": [
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "functools.partial",
        "sklearn.utils.validation.check_array",
    ],
    "random_forest": ["sklearn.tree._tree.Tree"],
    "logistic_regression": [],
}


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame


def split(model: GovernedModel, frame: pd.DataFrame) -> Split:
    """Deterministic split by a hash of the id column (the same id is always on the same side)."""
    in_test = test_mask(frame[model.id_column], model.evaluation.test_fraction)
    return Split(train=frame[~in_test], test=frame[in_test])


def test_mask(ids: pd.Series, fraction: float) -> np.ndarray:
    hashed = pd.util.hash_pandas_object(ids, index=False).to_numpy()
    return (hashed % 10_000) < int(fraction * 10_000)


def unfavourable(model: GovernedModel, frame: pd.DataFrame) -> np.ndarray:
    """1 where the recorded outcome is the unfavourable one (the event the score predicts)."""
    return (frame[model.target] != model.favourable_outcome).to_numpy(dtype=np.int8)


def categorical_features(model: GovernedModel) -> list[str]:
    contract = model.contract
    return [c for c in model.feature_columns if contract[c].kind == "category"]


def build_pipeline(model: GovernedModel) -> Pipeline:
    """Preprocessing and estimator as one scikit-learn pipeline (what MLflow stores and serves)."""
    features = model.feature_columns
    categorical = categorical_features(model)
    numeric = [c for c in features if c not in categorical]
    params = dict(model.estimator.params)
    if model.estimator.kind == "logistic_regression":
        prep = ColumnTransformer(
            [
                ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
                ("numeric", StandardScaler(), numeric),
            ],
            verbose_feature_names_out=False,
        )
        return Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000, **params))])
    # Tree models: one ordinal column per categorical feature keeps attributions per feature.
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2)
    prep = ColumnTransformer(
        [("categorical", encoder, categorical), ("numeric", "passthrough", numeric)], verbose_feature_names_out=False
    )
    if model.estimator.kind == "random_forest":
        estimator = RandomForestClassifier(n_jobs=-1, **{"n_estimators": 200, "min_samples_leaf": 20, **params})
    else:
        estimator = HistGradientBoostingClassifier(categorical_features=list(range(len(categorical))), **params)
    return Pipeline([("prep", prep), ("model", estimator)])


def estimator_problem(model: GovernedModel) -> str | None:
    """Why the model's estimator cannot be built with its configured `params` (a misspelled keyword), or None:
    `govern train` says so before anything is requested, not `trained_model` after the data was snapshotted."""
    try:
        build_pipeline(model)
    except TypeError as exc:
        return (
            f"model '{model.name}': field 'estimator.params': {model.estimator.kind} cannot take "
            f"{sorted(model.estimator.params)}: {exc}"
        )
    return None


def fit(model: GovernedModel, train: pd.DataFrame) -> Pipeline:
    pipeline = build_pipeline(model)
    pipeline.fit(feature_frame(train, model.feature_columns), unfavourable(model, train))
    return pipeline


def score(pipeline: Pipeline, model: GovernedModel, frame: pd.DataFrame) -> np.ndarray:
    """Probability of the unfavourable outcome for each row."""
    return pipeline.predict_proba(feature_frame(frame, model.feature_columns))[:, 1]


def feature_frame(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The feature columns as the pipeline must see them: every missing value NaN. A request's null arrives
    as None, which the category encoder would take for a category of its own (a snapshot's missing value
    is NaN), so the same applicant would be scored differently in training and in serving. A nullable integer
    or boolean read with gaps (pandas' Int64 or boolean, whose pd.NA scikit-learn refuses) becomes float64 with NaN,
    as serving frames it."""
    chosen = frame[features]
    text = chosen.select_dtypes(include="object").columns
    nullable = [c for c in features if pd.api.types.is_extension_array_dtype(chosen[c]) and _nullable(chosen[c])]
    if not len(text) and not nullable:
        return chosen
    return chosen.assign(
        **{column: chosen[column].where(chosen[column].notna(), np.nan) for column in text},
        **{column: chosen[column].astype("float64") for column in nullable},
    )


def _nullable(values: pd.Series) -> bool:
    """pandas' nullable numbers and booleans (Int64, Float64, boolean), not categories or text."""
    return pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def params_of(model: GovernedModel) -> dict[str, str]:
    """Flat parameters to record with the training run."""
    estimator = build_pipeline(model).named_steps["model"]
    flat = {f"estimator.{k}": str(v) for k, v in sorted(estimator.get_params().items())}
    return {
        "estimator.kind": model.estimator.kind,
        "features": ",".join(model.feature_columns),
        "test_fraction": str(model.evaluation.test_fraction),
        **flat,
    }


def feature_digest(model: GovernedModel) -> str:
    return hashlib.sha256(",".join(model.feature_columns).encode()).hexdigest()
