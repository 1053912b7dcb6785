"""Principal reasons of a decision: the features that pushed its score most towards decline.

Computed from the same SHAP attributions as the model card (log-odds, or a forest's probability, of the
unfavourable outcome, per original feature): the features with the largest
positive attributions, at most four. A protected attribute, or a feature the
version's proxy screen flagged as a proxy of one, is never given (Reg B, ECOA):
the next eligible feature is, and the decision counts how many were withheld.
Each reason is {code, feature, text}; the text is the model's configured
adverse-action reason, or one made from the feature name. An approval states
none (`decide._principal`): it takes no adverse action.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from governance.config import GovernedModel

MAX_REASONS = 4


@dataclass(frozen=True)
class Reasons:
    """One decision's principal reasons, strongest first, and how many features were withheld from them."""

    given: list[dict]
    withheld: int


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
        how many withheld features would have been among them."""
        values = attributions[self.features].to_numpy(dtype=float)
        would_be = np.argsort(-values, axis=1, kind="stable")[:, :MAX_REASONS]
        pushed = np.take_along_axis(values, would_be, axis=1) > 0
        withheld = (pushed & ~self._eligible[would_be]).sum(axis=1)
        eligible_values = np.where(self._eligible, values, -np.inf)
        order = np.argsort(-eligible_values, axis=1, kind="stable")[:, :MAX_REASONS]
        return [
            Reasons([self._reasons[i] for i in row if eligible_values[r, i] > 0], int(withheld[r]))
            for r, row in enumerate(order)
        ]
