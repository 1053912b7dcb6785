"""Principal reasons of a decision: the features that pushed its score most towards decline.

Computed from the same SHAP attributions as the model card (log-odds, or a forest's probability, of the
unfavourable outcome, per original feature): the features with the largest
positive attributions, at most four, never a protected attribute. Each reason
is {code, feature, text}; the text is the model's configured adverse-action
reason, or one made from the feature name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from governance.config import GovernedModel

MAX_REASONS = 4


class ReasonCodes:
    def __init__(self, model: GovernedModel) -> None:
        protected = set(model.protected_columns)
        self.features = [f for f in model.feature_columns if f not in protected]
        self._reasons = [{"code": feature.upper(), "feature": feature,
                          "text": model.reason_codes.get(feature) or default_text(feature)}
                         for feature in self.features]

    def principal(self, attributions: pd.DataFrame) -> list[list[dict]]:
        """For each row of attributions, its principal reasons, strongest first."""
        values = attributions[self.features].to_numpy(dtype=float)
        order = np.argsort(-values, axis=1, kind="stable")[:, :MAX_REASONS]
        return [[self._reasons[i] for i in row if values[r, i] > 0] for r, row in enumerate(order)]


def default_text(feature: str) -> str:
    return feature.replace("_", " ").strip().capitalize()
