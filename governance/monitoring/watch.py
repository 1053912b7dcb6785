"""What the monitoring policy in force would do about a version in production, for its model card."""

from __future__ import annotations

from typing import Any

from governance.config import GovernedModel
from governance.monitoring.drift import distance_methods
from governance.monitoring.policy import what_would_fire
from governance.monitoring.reference import importance_shares
from governance.policy.bundle import PolicyBundle


def card_watch(bundle: PolicyBundle, model: GovernedModel, key: str, explainability: dict) -> dict[str, Any]:
    """The rules that would fire on the version's windows, and from what drift each feature alone would
    call for retraining (its importance from the version's explainability report)."""
    shares = importance_shares(explainability, model.feature_columns)
    features = {
        name: {"method": method, "importance": shares[name]["share"], "importance_rank": shares[name]["rank"]}
        for name, method in distance_methods(model).items()
    }
    watch = what_would_fire(bundle, model.name, key, model.risk_tier, features)
    watch["features"].sort(key=lambda row: row["importance_rank"])
    return watch
