"""Principal reasons of a decision: the features that pushed its score most towards decline.

Computed from the same SHAP attributions as the model card (log-odds, or a forest's probability, of the
unfavourable outcome, per original feature): the features with the largest
positive attributions, at most four. A protected attribute, or a feature the
version's proxy screen flagged as a proxy of one, is never given (Reg B, ECOA):
the next eligible feature is, and the decision counts how many were withheld.
Each reason is {code, feature, text}; the text is the model's configured
adverse-action reason, or one made from the feature name. An approval states
none (`governance.serving.decide._principal`): it takes no adverse action.

The scoring API gives these reasons; the explainability report counts, on the sample it explains, what they
withhold, so the card's figure is the one serving would log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from governance.config import GovernedModel

MAX_REASONS = 4


@dataclass(frozen=True)
class Reasons:
    """One decision's principal reasons, strongest first, and the features withheld from them (strongest first)."""

    given: list[dict]
    withheld: tuple[str, ...]


class ReasonCodes:
    def __init__(self, model: GovernedModel, withheld: frozenset[str] = frozenset()) -> None:
        self.features = model.feature_columns
        self.withheld = frozenset(model.protected_columns) | withheld
        self._eligible = np.array([f not in self.withheld for f in self.features])
        self._reasons = [
            {
                "code": feature.upper(),
                "feature": feature,
                "text": model.reason_text(feature),
            }
            for feature in self.features
        ]

    def principal(self, attributions: pd.DataFrame) -> list[Reasons]:
        """For each row of attributions, its principal reasons among eligible features, strongest first, and
        the withheld features that would have been among them."""
        values = attributions[self.features].to_numpy(dtype=float)
        would_be = np.argsort(-values, axis=1, kind="stable")[:, :MAX_REASONS]
        pushed = np.take_along_axis(values, would_be, axis=1) > 0
        withheld = pushed & ~self._eligible[would_be]
        eligible_values = np.where(self._eligible, values, -np.inf)
        order = np.argsort(-eligible_values, axis=1, kind="stable")[:, :MAX_REASONS]
        return [
            Reasons(
                [self._reasons[i] for i in row if eligible_values[r, i] > 0],
                tuple(self.features[i] for i in would_be[r][withheld[r]]),
            )
            for r, row in enumerate(order)
        ]


def withheld_count(reasons: list[Reasons], adverse: np.ndarray) -> dict:
    """What the reasons of the `adverse` rows (declined or referred: an approval states no reasons) withhold:
    how many rows, how many of them would have been given a withheld feature (and each feature's count of
    them), how many reasons were withheld in total."""
    withheld = [why.withheld for why, counted in zip(reasons, adverse, strict=True) if counted]
    return {
        "adverse": len(withheld),
        "applications": sum(bool(features) for features in withheld),
        "reasons": sum(len(features) for features in withheld),
        "by_feature": dict(Counter(f for features in withheld for f in features).most_common()),
    }
