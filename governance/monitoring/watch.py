"""What the monitoring policy in force would do about a version in production, for its model card."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from governance.config import GovernedModel
from governance.monitoring.decision_rates import FIGURE, OUTCOMES, moved_at_least, shift_interval
from governance.monitoring.drift import distance_methods
from governance.monitoring.policy import retrains, what_would_fire
from governance.monitoring.reference import REFERENCE_ROWS, importance_shares
from governance.policy.bundle import PolicyBundle


def card_watch(
    bundle: PolicyBundle, model: GovernedModel, key: str, explainability: dict, performance: dict
) -> dict[str, Any]:
    """The rules that would fire on the version's windows, from what drift each feature alone would call for
    retraining (its importance from the version's explainability report), and within which shares of a full
    window each decision outcome alone does not (its test-set share from the version's performance report)."""
    shares = importance_shares(explainability, model.feature_columns)
    features = {
        name: {"method": method, "importance": shares[name]["share"], "importance_rank": shares[name]["rank"]}
        for name, method in distance_methods(model).items()
    }
    watch = what_would_fire(bundle, model.name, key, model.risk_tier, features)
    watch["features"].sort(key=lambda row: row["importance_rank"])
    watch["decisions"] = _decision_watch(bundle, model, key, performance)
    return watch


def _decision_watch(bundle: PolicyBundle, model: GovernedModel, key: str, performance: dict) -> dict[str, Any]:
    """Per outcome: its share on the test set at today's cut-offs, and the range of a full window's share within
    which it alone calls for no retraining (None when it calls for retraining whatever the share), Cedar asked
    while bisecting on the window's count. The reference a window is judged against is up to REFERENCE_ROWS of
    those test rows."""
    rows, reference_rows = model.monitoring.window_size, min(int(performance["rows"]), REFERENCE_ROWS)
    window = {"model": model.name, "version": key, "risk_tier": model.risk_tier, "decisions": rows}
    watched = []
    for outcome in OUTCOMES:
        share = float(performance["decisions"][outcome])
        fires = partial(_fires, bundle, window, share, reference_rows, model.evaluation.confidence)
        centre = round(share * rows)
        quiet = (
            None if fires(centre) else [_quiet_edge(fires, centre, 0) / rows, _quiet_edge(fires, centre, rows) / rows]
        )
        watched.append({"outcome": outcome, "reference_share": share, "quiet": quiet})
    return {"window_rows": rows, "reference_rows": reference_rows, "outcomes": watched}


def _fires(
    bundle: PolicyBundle, window: dict, share: float, reference_rows: int, confidence: float, count: int
) -> bool:
    """Whether `count` decisions of an outcome in the window, against its reference `share`, alone call for
    retraining."""
    rows = window["decisions"]
    interval = shift_interval(count / rows, rows, share, reference_rows, confidence)
    return retrains(bundle, window, {FIGURE: moved_at_least(interval)})


def _quiet_edge(fires: Callable[[int], bool], inside: int, outside: int) -> int:
    """The count furthest from `inside` towards `outside` that does not fire (`inside` does not, and firing
    only grows with the distance from it)."""
    if not fires(outside):
        return outside
    while abs(outside - inside) > 1:
        middle = (inside + outside) // 2
        if fires(middle):
            outside = middle
        else:
            inside = middle
    return inside
