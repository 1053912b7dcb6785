"""Discrimination and calibration of a score on a held-out test set, overall and by group.

`y` is 1 for the unfavourable outcome the score predicts; `score` its probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import auc, brier_score_loss, roc_curve

from governance.config import Decisioning

CALIBRATION_BINS = 10
ROC_POINTS = 101


def performance_report(y: np.ndarray, score: np.ndarray, groups: dict[str, pd.Series],
                       decisioning: Decisioning) -> dict:
    """AUC, Gini, KS, Brier, calibration and decision rates; the same by protected group."""
    overall = discrimination(y, score)
    return {
        "rows": int(len(y)),
        "event_rate": float(y.mean()),
        **overall,
        "brier": float(brier_score_loss(y, score)),
        "calibration": calibration(y, score),
        "roc_curve": roc_points(y, score),
        "decisions": decision_rates(score, decisioning),
        "by_group": {name: _by_group(y, score, values.to_numpy()) for name, values in groups.items()},
    }


def discrimination(y: np.ndarray, score: np.ndarray) -> dict:
    """AUC, Gini (2 AUC - 1) and the Kolmogorov-Smirnov statistic; None where one class is absent."""
    if len(np.unique(y)) < 2:
        return {"auc": None, "gini": None, "ks": None}
    fpr, tpr, _ = roc_curve(y, score)
    area = float(auc(fpr, tpr))  # what roc_auc_score computes, without sorting the scores a second time
    return {"auc": area, "gini": 2 * area - 1, "ks": float(np.max(tpr - fpr))}


def calibration(y: np.ndarray, score: np.ndarray) -> dict:
    """Observed event rate against mean score in equal-count bins, and the expected calibration error."""
    order = np.argsort(score, kind="stable")
    bins = [b for b in np.array_split(order, CALIBRATION_BINS) if len(b)]
    rows = [{"mean_score": float(score[b].mean()), "observed_rate": float(y[b].mean()), "rows": int(len(b))}
            for b in bins]
    ece = sum(r["rows"] * abs(r["mean_score"] - r["observed_rate"]) for r in rows) / max(len(y), 1)
    return {"bins": rows, "expected_calibration_error": float(ece)}


def roc_points(y: np.ndarray, score: np.ndarray) -> dict:
    if len(np.unique(y)) < 2:
        return {"fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(y, score)
    grid = np.linspace(0, 1, ROC_POINTS)
    return {"fpr": grid.round(4).tolist(), "tpr": np.interp(grid, fpr, tpr).round(4).tolist()}


def decision_rates(score: np.ndarray, decisioning: Decisioning) -> dict:
    approve = score < decisioning.approve_below
    decline = score >= decisioning.decline_at_or_above
    return {"approve": float(approve.mean()), "refer": float((~approve & ~decline).mean()),
            "decline": float(decline.mean())}


def _by_group(y: np.ndarray, score: np.ndarray, values: np.ndarray) -> dict:
    result = {}
    for group in pd.unique(values):
        mask = values == group
        result[str(group)] = {"rows": int(mask.sum()), "event_rate": float(y[mask].mean()),
                              "mean_score": float(score[mask].mean()), **discrimination(y[mask], score[mask])}
    return dict(sorted(result.items()))
