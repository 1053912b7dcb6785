"""Drift of a window from its version's reference: data drift (Evidently) and score drift (PSI).

Data drift is Evidently's: each feature is tested against the reference with
the method Evidently picks for its type and sizes (Wasserstein distance for
numbers and Jensen-Shannon for categories against references over 1,000 rows),
and the figure the policy reads is the share of features that drifted. A sensor
tick asks Evidently for that share alone (`DriftedColumnsCount`, the metric at
the head of `DataDriftPreset`: about 50 ms for a window against a 3,000-row
reference, whose Evidently dataset is prepared once); a monitoring report runs
the whole `DataDriftPreset`, with each feature's test and the HTML report (about
a second), and yields the same share. Evidently is imported on first use: the
import takes seconds, and only processes that judge data drift need it.

Each feature's drift distance is measured with Evidently's own stat tests,
the method fixed whatever the sizes (Wasserstein distance normed by the
reference's spread for numbers, Jensen-Shannon distance for categories): how
far the values moved, not how sure a test is that they moved, so that the
policy can ask whether a feature its version's decisions rest on (its share of
the sealed SHAP attributions, from the reference) drifted strongly. Called
directly (about 12 ms for 17 features), not as 17 `ValueDrift` metrics in the
report (about 0.6 s a window, most of it building their plots). Missing values are left out of a feature's
distance, which is then the larger of that and the change in the feature's share of missing values (a window
of which every value is missing, where the reference has some, is ONE_SIDED_DISTANCE away).

Score drift is the population stability index of the window's scores over ten
bins cut at the deciles of the reference's scores.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd

from governance.config import GovernedModel
from governance.data.categories import category_text
from governance.errors import GovernanceError
from governance.monitoring.figures import Measurement
from governance.monitoring.reference import Reference

PSI_BINS = 10
NUMERIC_DISTANCE, CATEGORY_DISTANCE = "wasserstein", "jensenshannon"
# The distance of a feature that has values on one side only (every one missing in the window, or in the
# reference): as far as a strong move (a reference standard deviation, or most of the Jensen-Shannon range).
ONE_SIDED_DISTANCE = 1.0
_FLOOR = 1e-4  # an empty bin would make PSI infinite; it counts as a 0.01% share
_KEEP_BASELINES = 64
_BASELINES: OrderedDict = OrderedDict()


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of `current` against `reference`, bins at the reference's quantiles."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = _shares(reference, edges)
    actual = _shares(current, edges)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return np.maximum(counts / max(len(values), 1), _FLOOR)


def score_drift(reference: Reference, scores: np.ndarray) -> Measurement:
    value = psi(reference.scores, scores)
    return Measurement(
        "score_drift",
        {"score_psi": value},
        f"score PSI {value:.3f}",
        {
            "psi": value,
            "bins": PSI_BINS,
            "window_rows": int(len(scores)),
            "reference_rows": int(len(reference.scores)),
            "mean_score": float(np.mean(scores)),
            "reference_mean_score": float(np.mean(reference.scores)),
        },
    )


def _categorical(model: GovernedModel) -> list[str]:
    """Features tested as categories: categories, and integers limited to listed values."""
    contract = model.contract
    return [c for c in model.feature_columns if contract[c].kind == "category" or contract[c].values]


def distance_methods(model: GovernedModel) -> dict[str, str]:
    """The distance each feature's drift is measured with: Jensen-Shannon for categories, else Wasserstein."""
    categories = set(_categorical(model))
    return {c: CATEGORY_DISTANCE if c in categories else NUMERIC_DISTANCE for c in model.feature_columns}


def _typed(model: GovernedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Features as Evidently should see them, the same for logged JSON and reference Parquet."""
    categories = set(_categorical(model))
    typed = {}
    for column in model.feature_columns:
        values = frame[column]
        if column in categories:
            typed[column] = category_text(values)
        else:
            typed[column] = pd.to_numeric(values, errors="coerce").astype(float)
    return pd.DataFrame(typed)


def data_drift(model: GovernedModel, reference: Reference, features: pd.DataFrame, full_report: bool = False):
    """The share of drifted features and each feature's drift distance beside its importance; with
    `full_report`, every feature's test and the Evidently snapshot.

    Returns (Measurement, snapshot or None).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount
    from evidently.presets import DataDriftPreset

    categories = _categorical(model)
    definition = DataDefinition(
        categorical_columns=categories, numerical_columns=[c for c in model.feature_columns if c not in categories]
    )
    typed = _typed(model, features)
    current = Dataset.from_pandas(typed, data_definition=definition)
    baseline, baseline_rows = _baseline(model, reference, definition)
    # Evidently refuses a feature with no value on a side: one missing on one side only counts as drifted.
    empty = {c for c in model.feature_columns if typed[c].isna().all() or baseline_rows[c].isna().all()}
    one_sided = sorted(c for c in empty if not (typed[c].isna().all() and baseline_rows[c].isna().all()))
    tested = [c for c in model.feature_columns if c not in empty]
    if not tested:
        raise GovernanceError(f"{model.name}: every feature of the window or of its reference is missing")
    metric = DataDriftPreset(columns=tested) if full_report else DriftedColumnsCount(columns=tested)
    snapshot = Report([metric], include_tests=full_report).run(current, baseline)
    result = snapshot.dict()
    count = int(result["metrics"][0]["value"]["count"]) + len(one_sided)
    share = count / (len(tested) + len(one_sided))  # a feature missing on both sides is not tested at all
    by_feature = _feature_figures(reference, _distances(baseline_rows, typed, distance_methods(model)))
    details: dict[str, Any] = {
        "share": share,
        "drifted_features": count,
        "features": len(model.feature_columns),
        "window_rows": int(len(features)),
        "reference_rows": int(len(reference.rows)),
        "importance_problem": reference.importance_problem,
    }
    if one_sided:
        details["missing_on_one_side"] = one_sided
    if full_report:
        details["by_feature"] = _feature_tests(result) + [
            {"feature": c, "method": None, "threshold": None, "score": None, "drifted": True} for c in one_sided
        ]
    summary = (
        f"data drift in {count} of {len(model.feature_columns)} features (share {share:.2f}){_strongest(by_feature)}"
    )
    return (
        Measurement("data_drift", {"drift_share": share}, summary, details, by_feature),
        snapshot if full_report else None,
    )


def _distances(reference: pd.DataFrame, current: pd.DataFrame, methods: dict[str, str]) -> dict[str, tuple[str, float]]:
    """feature -> (method, distance of the window's values from the reference's), by Evidently's stat tests."""
    from evidently.legacy.calculations.stattests import jensenshannon_stat_test, wasserstein_stat_test
    from evidently.legacy.core import ColumnType

    tests = {
        CATEGORY_DISTANCE: (jensenshannon_stat_test, ColumnType.Categorical),
        NUMERIC_DISTANCE: (wasserstein_stat_test, ColumnType.Numerical),
    }
    distances = {}
    for column, method in methods.items():
        test, kind = tests[method]
        # Over the values present (one missing value would make Evidently's distance NaN), or the change in the
        # share of missing values if that is larger: a feature that went 90% missing moved, whatever is left.
        present, now = reference[column].dropna(), current[column].dropna()
        if present.empty or now.empty:
            distance = 0.0 if present.empty and now.empty else ONE_SIDED_DISTANCE
        else:
            distance = float(test(present, now, kind, None).drift_score)
        gone = abs(float(current[column].isna().mean()) - float(reference[column].isna().mean()))
        distances[column] = method, max(distance, gone)
    return distances


def _feature_figures(reference: Reference, distances: dict[str, tuple[str, float]]) -> dict[str, dict]:
    """FeatureDrift figures by feature: the method, its distance, and the feature's importance when known."""
    importance = reference.importance or {}
    figures = {}
    for column, (method, distance) in distances.items():
        known = importance.get(column)
        figures[column] = {
            "method": method,
            "drift_distance": distance,
            **({"importance": float(known["share"]), "importance_rank": int(known["rank"])} if known else {}),
        }
    return figures


def _strongest(by_feature: dict[str, dict]) -> str:
    """The most important of the three features that moved furthest, for the one-line summary."""
    moved = sorted(by_feature.items(), key=lambda item: -item[1]["drift_distance"])[:3]
    name, figures = min(moved, key=lambda item: item[1].get("importance_rank", len(by_feature) + 1))
    weight = (
        f", importance {figures['importance']:.2f} rank {figures['importance_rank']}"
        if "importance" in figures
        else ", importance unknown"
    )
    return f"; {name} moved {figures['drift_distance']:.2f} ({figures['method']}{weight})"


def _baseline(model: GovernedModel, reference: Reference, definition):
    """The reference as an Evidently dataset and as typed rows, prepared once per reference (it is the same
    every tick). Keyed on the rows' content: every reference a sensor built in memory has the same `sha256`
    placeholder, and keying on it judged one model's windows against another's reference."""
    from evidently import Dataset

    key = (reference.content_digest, tuple(model.feature_columns), tuple(definition.categorical_columns or ()))
    if key not in _BASELINES:
        rows = _typed(model, reference.rows)
        _BASELINES[key] = Dataset.from_pandas(rows, data_definition=definition), rows
        while len(_BASELINES) > _KEEP_BASELINES:
            _BASELINES.popitem(last=False)
    return _BASELINES[key]


def _feature_tests(result: dict) -> list[dict]:
    """Each feature's drift test from a DataDriftPreset snapshot: method, threshold, score, drifted."""
    scores = {m["id"]: m["value"] for m in result["metrics"]}
    tests = []
    for test in result.get("tests", []):
        params = test["metric_config"]["params"]
        if not params.get("type", "").endswith("ValueDrift"):
            continue
        tests.append(
            {
                "feature": params["column"],
                "method": params.get("method"),
                "threshold": params.get("threshold"),
                "score": float(scores[test["metric_config"]["metric_id"]]),
                "drifted": test["status"] == "FAIL",
            }
        )
    return sorted(tests, key=lambda t: (not t["drifted"], t["feature"]))
