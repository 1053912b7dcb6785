"""Discrimination on labelled decisions against the approved model card's figures.

AUC and KS of the window's scores on the real outcomes that arrived, compared
with the AUC and KS of the version's sealed performance report. A few hundred
labelled decisions measure AUC to a few points, so the policy reads lower
confidence bounds of the drops: the card's AUC minus the window's AUC plus its
Hanley-McNeil margin, and the card's KS minus the window's KS plus the
two-sample Kolmogorov-Smirnov critical value at the same confidence.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from governance.metrics.performance import discrimination
from governance.monitoring.figures import Measurement

MIN_EVENTS = 10  # fewer outcomes of either kind measure nothing


def performance(
    card: dict[str, float] | None,
    card_problem: str | None,
    unfavourable: np.ndarray,
    scores: np.ndarray,
    confidence: float,
) -> Measurement:
    """AUC and KS of the window, and the lower bounds of their drops from the card's figures."""
    events, others = int(unfavourable.sum()), int(len(unfavourable) - unfavourable.sum())
    details = {
        "labelled": int(len(unfavourable)),
        "unfavourable_outcomes": events,
        "confidence": confidence,
        "card": card,
    }
    if card is None:
        return Measurement("performance", {}, f"performance not judged: {card_problem}", details)
    if min(events, others) < MIN_EVENTS:
        return Measurement(
            "performance",
            {},
            f"performance not judged: {events} unfavourable and {others} "
            f"favourable outcomes (need {MIN_EVENTS} of each)",
            details,
        )
    measured = discrimination(unfavourable, scores)
    auc, ks = measured["auc"], measured["ks"]
    auc_margin = NormalDist().inv_cdf((1 + confidence) / 2) * _auc_standard_error(auc, events, others)
    ks_margin = math.sqrt(-0.5 * math.log((1 - confidence) / 2)) * math.sqrt((events + others) / (events * others))
    attributes = {"auc_drop_ci_low": card["auc"] - (auc + auc_margin), "ks_drop_ci_low": card["ks"] - (ks + ks_margin)}
    details.update(auc=auc, ks=ks, auc_margin=auc_margin, ks_margin=ks_margin)
    summary = f"AUC {auc:.3f} (card {card['auc']:.3f}), KS {ks:.3f} (card {card['ks']:.3f}) on {len(scores)} labelled"
    return Measurement("performance", attributes, summary, details)


def _auc_standard_error(auc: float, events: int, others: int) -> float:
    """Hanley and McNeil (1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (events - 1) * (q1 - auc**2) + (others - 1) * (q2 - auc**2)) / (events * others)
    return math.sqrt(max(variance, 0.0))
