"""What one measurement of a window yields: figures for the policy, details for people."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Measurement:
    """One concern measured on one window.

    `attributes` are MonitoringWindow attributes (policies/schema.cedarschema), unrounded; a concern
    that could not be measured (too few decisions of a group, no labels) has none, and says why in
    `summary`. `details` are the JSON figures behind them, for the report and the ledger. `features`
    are per-feature figures the policy judges one feature at a time (FeatureDrift attributes, by feature).
    """

    concern: str
    attributes: dict[str, float]
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    features: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "concern": self.concern,
            "attributes": self.attributes,
            "summary": self.summary,
            "details": self.details,
            "features": self.features,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(
            data["concern"],
            dict(data["attributes"]),
            data["summary"],
            dict(data["details"]),
            {name: dict(figures) for name, figures in data.get("features", {}).items()},
        )
