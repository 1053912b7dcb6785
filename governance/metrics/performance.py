"""Discrimination and calibration of a score on a held-out test set, overall and by group.

`y` is 1 for the unfavourable outcome the score predicts; `score` its probability.
Every figure reads the scores sorted once: a group's rows, taken in that order,
are already sorted, so no group sorts again (at a million rows, scikit-learn's
`roc_curve` per group and per figure was most of the report's time). The ROC
curve is scikit-learn's, point for point, so AUC and KS are too, ties included
(tests/test_metrics.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss

from governance.config import Decisioning

CALIBRATION_BINS = 10
ROC_POINTS = 101


def performance_report(
    y: np.ndarray, score: np.ndarray, groups: dict[str, pd.Series], decisioning: Decisioning
) -> dict:
    """AUC, Gini, KS, Brier, calibration and decision rates; the same by protected group."""
    order = np.argsort(score, kind="stable")
    y_sorted, score_sorted = y[order], score[order]
    curve = _roc(y_sorted, score_sorted)
    return {
        "rows": int(len(y)),
        "event_rate": float(y.mean()),
        **_discrimination(curve),
        "brier": float(brier_score_loss(y, score)),
        "calibration": _calibration(y_sorted, score_sorted),
        "roc_curve": _roc_points(curve),
        "decisions": decision_rates(score, decisioning),
        "by_group": {
            name: _by_group(y_sorted, score_sorted, values.to_numpy()[order]) for name, values in groups.items()
        },
    }


def discrimination(y: np.ndarray, score: np.ndarray) -> dict:
    """AUC, Gini (2 AUC - 1) and the Kolmogorov-Smirnov statistic; None where one class is absent."""
    order = np.argsort(score, kind="stable")
    return _discrimination(_roc(np.asarray(y)[order], np.asarray(score)[order]))


def decision_rates(score: np.ndarray, decisioning: Decisioning) -> dict:
    approve = score < decisioning.approve_below
    decline = score >= decisioning.decline_at_or_above
    return {
        "approve": float(approve.mean()),
        "refer": float((~approve & ~decline).mean()),
        "decline": float(decline.mean()),
    }


def _roc(y_sorted: np.ndarray, score_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(fpr, tpr) exactly as scikit-learn's `roc_curve` draws them (one point per distinct score from the
    highest down, collinear points dropped, from (0, 0)); None where one class is absent."""
    if len(score_sorted) and np.isnan(score_sorted[-1]):  # argsort puts NaN last
        raise ValueError(f"{int(np.isnan(score_sorted).sum())} of {len(score_sorted)} scores are NaN")
    events = y_sorted[::-1].astype(np.int64)
    if not len(events):
        return None
    last_of_each_score = np.r_[np.flatnonzero(np.diff(score_sorted[::-1])), len(events) - 1]
    tps = np.cumsum(events)[last_of_each_score]
    fps = last_of_each_score + 1 - tps
    if tps[-1] == 0 or fps[-1] == 0:
        return None
    if len(fps) > 2:
        kept = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[kept], tps[kept]
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def _discrimination(curve: tuple[np.ndarray, np.ndarray] | None) -> dict:
    if curve is None:
        return {"auc": None, "gini": None, "ks": None}
    fpr, tpr = curve
    area = float(np.trapezoid(tpr, fpr))
    return {"auc": area, "gini": 2 * area - 1, "ks": float(np.max(tpr - fpr))}


def _calibration(y_sorted: np.ndarray, score_sorted: np.ndarray) -> dict:
    """Observed event rate against mean score in equal-count bins, and the expected calibration error."""
    bins = [b for b in np.array_split(np.arange(len(y_sorted)), CALIBRATION_BINS) if len(b)]
    rows = [
        {"mean_score": float(score_sorted[b].mean()), "observed_rate": float(y_sorted[b].mean()), "rows": int(len(b))}
        for b in bins
    ]
    ece = sum(r["rows"] * abs(r["mean_score"] - r["observed_rate"]) for r in rows) / max(len(y_sorted), 1)
    return {"bins": rows, "expected_calibration_error": float(ece)}


def _roc_points(curve: tuple[np.ndarray, np.ndarray] | None) -> dict:
    if curve is None:
        return {"fpr": [], "tpr": []}
    fpr, tpr = curve
    grid = np.linspace(0, 1, ROC_POINTS)
    return {"fpr": grid.round(4).tolist(), "tpr": np.interp(grid, fpr, tpr).round(4).tolist()}


def _by_group(y_sorted: np.ndarray, score_sorted: np.ndarray, values_sorted: np.ndarray) -> dict:
    codes, groups = pd.factorize(values_sorted)
    result = {}
    for code, group in enumerate(groups):
        mask = codes == code
        y, score = y_sorted[mask], score_sorted[mask]
        result[str(group)] = {
            "rows": int(mask.sum()),
            "event_rate": float(y.mean()),
            "mean_score": float(score.mean()),
            **_discrimination(_roc(y, score)),
        }
    return dict(sorted(result.items()))
