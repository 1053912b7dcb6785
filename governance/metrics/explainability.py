"""Attributions (SHAP) per original feature, global importance, and proxy detection.

`attributions` is shared by the explainability report and the scoring API's
reason codes, so the reasons a customer gets are computed exactly as the card
describes. Attributions are in log-odds of the unfavourable outcome (a forest's
in probability): a positive value pushed the score towards decline.

A feature is a proxy for a protected attribute when it alone separates a
protected group from the rest: proxy strength is max over groups of
|2 AUC - 1| (0 = no information, 1 = a perfect copy). Categorical features are
scored by each category's share of the group; a missing value counts as information.

Every feature is screened, whatever its rank. Its strength is weighed by how much
the model leans on it: weighted strength = strength x importance share, where the
importance share is its mean |SHAP| over the most important feature's (1 for the
top feature). A feature is flagged as a proxy when its weighted strength reaches
`evaluation.proxy_flag_strength` (the model leans on a stand-in), or when its
strength alone reaches `evaluation.proxy_encoding_strength` whatever its importance
(it encodes the attribute: a copy the model could lean on at any retraining).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.pipeline import Pipeline

from governance.config import MAX_SHAP_CATEGORIES, GovernedModel
from governance.errors import GovernanceError
from governance.metrics.reasons import ReasonCodes, withheld_count
from governance.training import feature_frame

PROXY_SAMPLE_ROWS = 20_000
ADDITIVITY_TOLERANCE = 1e-9  # in probability


@dataclass(frozen=True)
class Explanation:
    """A batch's scores (the probability of the unfavourable outcome, as `training.score` gives it), their
    attributions, and each row's additivity gap."""

    scores: np.ndarray
    attributions: pd.DataFrame
    gaps: np.ndarray

    @property
    def faithful(self) -> np.ndarray:
        """Rows whose attributions add up to their score (within ADDITIVITY_TOLERANCE)."""
        return self.gaps <= ADDITIVITY_TOLERANCE


class Explainer:
    """A SHAP explainer for one fitted pipeline, mapping outputs back to original features.

    Linear models need `background` rows (SHAP's masker); tree models do not. Attributions must add up to
    the estimator's own output (its log-odds, or a forest's probability; `units` says which) for each row,
    so an explanation that misstates the model is refused rather than published: `attributions` refuses a
    batch with any such row, `explain` reports each row's gap for callers that refuse row by row.
    """

    def __init__(self, pipeline: Pipeline, features: list[str], background: pd.DataFrame | None = None) -> None:
        import shap

        self.pipeline, self.features = pipeline, features
        prep, estimator = pipeline.named_steps["prep"], pipeline.named_steps["model"]
        self._origin = _output_origins(prep)
        if hasattr(estimator, "coef_"):
            if background is None:
                raise ValueError("explaining a linear model needs background rows")
            self.method = "LinearExplainer"
            self._shap = shap.LinearExplainer(estimator, prep.transform(feature_frame(background, features)))
        else:
            self.method = "TreeExplainer"
            self._shap = shap.TreeExplainer(estimator)
        # SHAP explains the margin: log-odds for boosting and linear models, probability for a forest.
        self.units = "log-odds" if hasattr(estimator, "decision_function") else "probability"
        self._categorical = _CategoricalSplits.of(estimator, self._shap, self._origin)

    def attributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """SHAP values per row and original feature (summed over one-hot columns); refused if any row's do not
        add up to its score."""
        return self.explain_all(frame).attributions

    def explain_all(self, frame: pd.DataFrame) -> Explanation:
        """`explain`, refused if any row's attributions do not add up to its score."""
        explanation = self.explain(frame)
        gaps = explanation.gaps
        if not explanation.faithful.all():
            estimator = self.pipeline.named_steps["model"]
            raise GovernanceError(
                f"{self.method} attributions do not add up to the {type(estimator).__name__}'s scores on "
                f"{int((~explanation.faithful).sum())} of {len(gaps)} rows (largest gap {np.nanmax(gaps):.3g}); "
                "the explanation would misstate the model, so none is given"
            )
        return explanation

    def explain(self, frame: pd.DataFrame) -> Explanation:
        """Each row's score and attributions from one pass through the preprocessing, with how far each row's
        attributions are from adding up to its score."""
        transformed = self.pipeline.named_steps["prep"].transform(feature_frame(frame, self.features))
        categorical = self._categorical
        values = np.asarray(
            self._shap.shap_values(transformed if categorical is None else categorical.shap_input(transformed))
        )
        if values.ndim == 3:  # per-class output (random forest): keep the unfavourable class
            values = values[:, :, 1]
        if categorical is not None:
            values = categorical.in_input_order(values)
        scores = self.pipeline.named_steps["model"].predict_proba(transformed)[:, 1]
        per_output = pd.DataFrame(values, columns=self._origin, index=frame.index)
        return Explanation(
            scores,
            per_output.T.groupby(level=0, sort=False).sum().T[self.features],
            self._additivity_gaps(values, scores),
        )

    def _additivity_gaps(self, values: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """|base value plus a row's attributions - the row's score| (through the logistic function where they
        are log-odds), in probability."""
        explained = values.sum(axis=1) + np.ravel(self._shap.expected_value)[-1]  # a forest's: per class
        if self.units == "log-odds":
            explained = expit(explained)
        return np.abs(explained - scores)


def version_explainer(settings, model: GovernedModel, pipeline: Pipeline, data_md5: str) -> Explainer:
    """The explainer of one model version, as the card and the scoring API both use it. A linear model's
    SHAP background is the version's first 200 training rows (read from its data snapshot); a tree model
    needs none."""
    if not hasattr(pipeline.named_steps["model"], "coef_"):
        return Explainer(pipeline, model.feature_columns)
    from governance import training
    from governance.data.source import read_snapshot

    train = training.split(model, read_snapshot(settings, model, data_md5)).train
    return Explainer(pipeline, model.feature_columns, train.head(200))


def explainability_report(
    model: GovernedModel, explainer: Explainer, test: pd.DataFrame, groups: dict[str, pd.Series]
) -> tuple[dict, pd.DataFrame]:
    """Global importance on a bounded sample, the proxy screen of every feature, and what the reason codes would
    withhold on the sample (`reasons.withheld_count`); also the sample's values."""
    evaluation = model.evaluation
    sample = test.sample(n=min(evaluation.shap_sample_rows, len(test)), random_state=0)
    explanation = explainer.explain_all(sample)
    values = explanation.attributions
    importance = values.abs().mean().sort_values(ascending=False)
    gated = {a.label for a in model.protected_attributes}
    proxies = proxy_strengths(test[model.feature_columns], {k: v for k, v in groups.items() if k in gated})
    screen = proxy_screen(importance, proxies, evaluation)
    report = {
        "sample_rows": len(sample),
        "method": explainer.method,
        "units": explainer.units,
        "importance": [
            {"feature": f, "mean_abs_shap": float(v), "rank": i + 1} for i, (f, v) in enumerate(importance.items())
        ],
        "proxy_strength": proxies,
        "proxy_screen": screen,
        "proxy_flags": [row for row in screen if row["flagged"]],
        "proxy_strength_max": _strongest(screen, "strength"),
        "proxy_weighted_max": _strongest(screen, "weighted"),
    }
    reasons = ReasonCodes(model, flagged_proxies(report)).principal(values)  # as the scoring API gives them
    declined_or_referred = explanation.scores >= model.decisioning.approve_below
    report["withheld_reasons"] = withheld_count(reasons, declined_or_referred)
    return report, values


def proxy_screen(importance: pd.Series, proxies: dict[str, dict[str, float]], evaluation) -> list[dict]:
    """Each feature's strongest protected attribute, its strength weighed by importance, and whether it is
    flagged (see the module docstring); the most worrying first."""
    top = float(importance.iloc[0]) if len(importance) and importance.iloc[0] > 0 else 1.0
    rows = []
    for rank, (feature, mean_abs) in enumerate(importance.items(), start=1):
        attribute, strength = max(proxies[feature].items(), key=lambda kv: kv[1], default=("none", 0.0))
        share = round(float(mean_abs) / top, 4)
        weighted = round(strength * share, 4)
        encodes, leans = strength >= evaluation.proxy_encoding_strength, weighted >= evaluation.proxy_flag_strength
        rows.append(
            {
                "feature": feature,
                "attribute": attribute,
                "strength": strength,
                "importance_share": share,
                "weighted": weighted,
                "rank": rank,
                "flagged": encodes or leans,
                "why": "encodes" if encodes else "leans" if leans else None,
            }
        )
    return sorted(rows, key=lambda row: (not row["flagged"], -row["weighted"], -row["strength"]))


def _strongest(screen: list[dict], figure: str) -> dict:
    """The screened feature with the highest `figure` (no feature: nothing measured, 0)."""
    row = max(screen, key=lambda r: r[figure], default=None)
    if row is None:
        return {
            "feature": "none",
            "attribute": "none",
            "strength": 0.0,
            "weighted": 0.0,
            "importance_share": 0.0,
            "rank": 0,
        }
    return {key: row[key] for key in ("feature", "attribute", "strength", "weighted", "importance_share", "rank")}


def flagged_proxies(explainability: dict) -> frozenset[str]:
    """The features an explainability report's screen flagged as proxies (never given as reasons)."""
    return frozenset(row["feature"] for row in explainability.get("proxy_flags", ()))


def proxy_strengths(features: pd.DataFrame, groups: dict[str, pd.Series]) -> dict[str, dict[str, float]]:
    """For each feature and protected attribute, how well the feature alone singles out one of its groups
    (on the same sample of at most PROXY_SAMPLE_ROWS rows for every feature)."""
    rows = np.random.default_rng(0).permutation(len(features))[:PROXY_SAMPLE_ROWS]
    sample = features.iloc[rows].reset_index(drop=True)
    members = {name: _group_members(labels.iloc[rows]) for name, labels in groups.items()}
    return {
        feature: {name: _strength(sample[feature], masks) for name, masks in members.items()}
        for feature in features.columns
    }


def _group_members(labels: pd.Series) -> list[np.ndarray]:
    """One membership mask per group that is neither empty nor everyone."""
    masks = [(labels == group).to_numpy() for group in pd.unique(labels)]
    return [m for m in masks if m.any() and not m.all()]


def _strength(values: pd.Series, members: list[np.ndarray]) -> float:
    """The best |2 AUC - 1| over groups (and, with missing values, over where they rank)."""
    if pd.api.types.is_numeric_dtype(values):
        orderings = _orderings(values)
        aucs = [_rank_auc(ranks, member) for member in members for ranks in orderings]
    else:
        codes = pd.factorize(values, use_na_sentinel=False)[0]
        aucs = [_rank_auc(_share_ranks(codes, member), member) for member in members]
    return round(max((abs(2 * auc - 1) for auc in aucs), default=0.0), 4)


def _orderings(values: pd.Series) -> list[np.ndarray]:
    """A numeric feature's average ranks, computed once for all groups. Being missing is information too
    (the estimator sends missing values to whichever side of a split fits): they rank lowest in one
    ordering and highest in the other."""
    if not values.isna().any():
        return [values.rank().to_numpy()]
    return [values.rank(na_option=placement).to_numpy() for placement in ("top", "bottom")]


def _share_ranks(codes: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Rows ranked by their category's share of the group (a category has no order of its own)."""
    share = np.bincount(codes, weights=member) / np.bincount(codes)
    return pd.Series(share[codes]).rank().to_numpy()


def _rank_auc(ranks: np.ndarray, member: np.ndarray) -> float:
    """AUC of `member` against a feature, from the feature's average ranks (Mann-Whitney U): the value
    roc_auc_score gives, ties counted half, without sorting the feature once per group."""
    positives = int(member.sum())
    negatives = len(member) - positives
    return float((ranks[member].sum() - positives * (positives + 1) / 2) / (positives * negatives))


class _CategoricalSplits:
    """SHAP on a HistGradientBoosting model's categorical splits, as the model makes them.

    SHAP converts every HistGradientBoosting split to `x <= threshold` (shap/shap#3436), which sends a
    category set down the wrong branches: attributions then no longer add up to the model's output. Its
    C core has a categorical split type (category c goes left when bit c-1 of the threshold is set), so
    each categorical node gets its left category set as that mask. The trees read the estimator's own
    codes, not the pipeline's: it re-encodes the categories it saw in training (a missing value among
    them) as 0..k-1 and anything else as missing, with its categorical columns first.
    """

    def __init__(self, estimator, explainer, origins: list[str]) -> None:
        self.estimator = estimator
        self.categorical = estimator._is_categorical_remapped  # per tree column
        # The input column behind each tree column.
        self.input_columns = np.r_[
            np.flatnonzero(estimator.is_categorical_), np.flatnonzero(~estimator.is_categorical_)
        ]
        for column in np.flatnonzero(self.categorical):
            count = len(estimator._bin_mapper.bin_thresholds_[column])
            if count > MAX_SHAP_CATEGORIES:
                raise GovernanceError(
                    f"feature {origins[self.input_columns[column]]!r} has {count} categories; SHAP "
                    f"explains categorical splits of at most {MAX_SHAP_CATEGORIES}"
                )
        ensemble = explainer.model
        for tree, (predictor,) in enumerate(estimator._predictors):
            nodes = predictor.nodes
            split = np.flatnonzero(nodes["is_categorical"].astype(bool) & ~nodes["is_leaf"].astype(bool))
            ensemble.thresholds[tree, split] = predictor.raw_left_cat_bitsets[nodes["bitset_idx"][split], 0]
            ensemble.threshold_types[tree, split] = 1

    @classmethod
    def of(cls, estimator, explainer, origins: list[str]) -> _CategoricalSplits | None:
        categorical = getattr(estimator, "is_categorical_", None)
        return cls(estimator, explainer, origins) if categorical is not None and categorical.any() else None

    def shap_input(self, transformed) -> np.ndarray:
        """The rows as the trees read them, categories 1-based."""
        codes = self.estimator._preprocessor.transform(transformed)
        codes[:, self.categorical] += 1
        return codes

    def in_input_order(self, values: np.ndarray) -> np.ndarray:
        ordered = np.empty_like(values)
        ordered[:, self.input_columns] = values
        return ordered


def _output_origins(prep) -> list[str]:
    """The original feature behind each column the preprocessing step outputs."""
    origins: list[str] = []
    for name, transformer, columns in prep.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if hasattr(transformer, "categories_") and len(transformer.get_feature_names_out(columns)) > len(columns):
            for column, categories in zip(columns, transformer.categories_):
                origins.extend([column] * len(categories))
        else:
            origins.extend(columns)
    return origins
