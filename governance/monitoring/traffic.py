"""Traffic for the demo, the tests and the benchmarks: generated applications decided as production decides them.

The applications come from the data generator, with its knobs (`drift`, `bias`,
`proxy`) making harmful traffic; each batch is decided by the scoring API's own
`DecisionMaker` following the governed champion and the kill switch, and logged
in the decision log before its answers return, exactly as `govern serve` does
for a batch of requests (without HTTP).
"""

from __future__ import annotations

import pandas as pd
from threadpoolctl import threadpool_limits

from governance.config import GovernedModel
from governance.control import ControlStore
from governance.data.generator import generate_applications
from governance.decisions import DecisionLog
from governance.registry import ModelRegistry
from governance.serving.batching import MAX_BATCH
from governance.serving.champion import ChampionFollower
from governance.serving.decide import Application, DecisionMaker
from governance.settings import Settings


class Traffic:
    """One model's decisions on generated applications, in the serving API's batches."""

    def __init__(self, settings: Settings, model: GovernedModel) -> None:
        control = ControlStore.for_settings(settings)
        self.model = model
        self.follower = ChampionFollower(settings, model, ModelRegistry.for_settings(settings), control)
        self.maker = DecisionMaker(model, self.follower, control, DecisionLog.for_settings(settings))

    def send(self, rows: int, seed: int, **knobs: float) -> list[dict]:
        """Decide `rows` generated applications (knobs: drift, bias, proxy); returns the answers, in order."""
        return self.decide(generate_applications(rows, seed=seed, **knobs))

    def decide(self, frame: pd.DataFrame) -> list[dict]:
        """Decide the applications of a frame (the generator's columns); returns the answers, in order."""
        self.follower.refresh()
        batch = applications(self.model, frame)
        answers = []
        with threadpool_limits(limits=1):  # as the API's decision thread runs (governance.serving.batching)
            for start in range(0, len(batch), MAX_BATCH):
                answers += self.maker.decide(batch[start : start + MAX_BATCH])
        return answers


def applications(model: GovernedModel, frame: pd.DataFrame) -> list[Application]:
    """Requests as the API receives them: every feature, and the protected attributes if the model collects them."""
    features = frame[model.feature_columns].to_dict("records")
    if not model.monitoring.collect_protected_attributes:
        return [Application(f, None) for f in features]
    protected = frame[model.protected_columns].to_dict("records")
    return [Application(f, p) for f, p in zip(features, protected)]
