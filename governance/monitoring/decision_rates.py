"""Decision-rate drift: how far the shares of applications approved, referred and declined moved from the reference's.

Both sides are scores cut at the model's decisioning cut-offs (`decision_rates`, as
the sealed performance report and the model card count decisions): the window's
scores, and the reference's (its held-out training rows scored by the approved
artifact). Cutting both at today's cut-offs means that a person changing the
cut-offs is not judged as drift of the population.

For each outcome the figure is the change of its share, window minus reference,
with Newcombe's hybrid score interval (Newcombe 1998, method 10: the two shares'
Wilson intervals combined), which keeps its coverage near shares of 0 and 1,
where a collapse of approvals ends and a Wald interval degenerates. Both shares
are samples (the reference of up to 3,000 rows, the window of a few hundred
decisions), and the three outcomes' intervals are Bonferroni-adjusted to hold
together at `evaluation.confidence` (the shares sum to one, so they are dependent;
Bonferroni holds whatever the dependence). The policy reads
`decision_shift_ci_low_max`: over the three outcomes, the largest change the
window's share has moved by at least (0 when an interval spans no change), in
points of share, and each risk tier sets the margin it tolerates
(policies/monitoring.cedar). When no outcome's true change exceeds the margin, a
window calls for retraining with probability at most 1 - confidence.

Why not the alternatives:
- a chi-square test of the outcome counts says whether the shares differ at all:
  against a 3,000-row reference it becomes significant for changes nobody would
  act on, and its p-value measures certainty, not how many applicants get
  another decision, so a tier cannot set a tolerated change on it;
- a PSI of the three shares has no sampling error, so on a window of a few
  hundred decisions noise alone crosses a fixed threshold; and it coarsens the
  score PSI that is judged already.
An absolute change in points of approval rate is what the business and a
supervisor read, and its lower confidence bound cannot be moved by noise alone.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from governance.config import GovernedModel
from governance.metrics.performance import decision_rates
from governance.monitoring.figures import Measurement
from governance.serving.decide import APPROVE, DECLINE, REFER

CONCERN = "decision_rate_drift"
FIGURE = "decision_shift_ci_low_max"
OUTCOMES = (APPROVE, REFER, DECLINE)


def decision_rate_drift(model: GovernedModel, reference_scores: np.ndarray, scores: np.ndarray) -> Measurement:
    """Each outcome's share in the window beside the reference's, the interval of its change, and the largest
    change some outcome's share moved by at least."""
    confidence = model.evaluation.confidence
    window, reference = decision_rates(scores, model.decisioning), decision_rates(reference_scores, model.decisioning)
    outcomes = {}
    for outcome in OUTCOMES:
        interval = shift_interval(window[outcome], len(scores), reference[outcome], len(reference_scores), confidence)
        outcomes[outcome] = {
            "share": window[outcome],
            "reference_share": reference[outcome],
            "shift": window[outcome] - reference[outcome],
            "shift_ci": list(interval),
            "moved_at_least": moved_at_least(interval),
        }
    largest = max(OUTCOMES, key=lambda o: outcomes[o]["moved_at_least"])
    details = {
        "window_rows": int(len(scores)),
        "reference_rows": int(len(reference_scores)),
        "confidence": confidence,
        "approve_below": model.decisioning.approve_below,
        "decline_at_or_above": model.decisioning.decline_at_or_above,
        "outcomes": outcomes,
    }
    shares = ", ".join(f"{o} {window[o]:.1%} (reference {reference[o]:.1%})" for o in OUTCOMES)
    bound = outcomes[largest]["moved_at_least"]
    summary = f"decisions {shares}; largest shift at least {bound:.3f} ({largest}, lower bound)"
    return Measurement(CONCERN, {FIGURE: bound}, summary, details)


def shift_interval(
    share: float, rows: int, reference_share: float, reference_rows: int, confidence: float
) -> tuple[float, float]:
    """Newcombe's hybrid score interval of `share - reference_share`, one of the three outcomes' simultaneous
    intervals at `confidence`."""
    z = NormalDist().inv_cdf(1 - (1 - confidence) / (2 * len(OUTCOMES)))
    low, high = _wilson(share, rows, z)
    reference_low, reference_high = _wilson(reference_share, reference_rows, z)
    shift = share - reference_share
    return (
        shift - math.hypot(share - low, reference_high - reference_share),
        shift + math.hypot(high - share, reference_share - reference_low),
    )


def moved_at_least(interval: tuple[float, float]) -> float:
    """The smallest absolute change the interval allows: 0 when it spans no change."""
    low, high = interval
    return max(0.0, low, -high)


def _wilson(share: float, rows: int, z: float) -> tuple[float, float]:
    centre = (share + z * z / (2 * rows)) / (1 + z * z / rows)
    half = z / (1 + z * z / rows) * math.sqrt(share * (1 - share) / rows + z * z / (4 * rows * rows))
    return centre - half, centre + half
