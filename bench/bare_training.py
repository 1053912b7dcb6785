"""The bare training script the pipeline benchmark compares against: no governance, same estimator.

Generates the configured data, splits it, fits the model's estimator and scores the test set; prints
the seconds that took. Imports only what that needs (pandas, scikit-learn, the generator), so run as
its own process it also pays only its own imports.

    .venv/bin/python bench/bare_training.py [CONFIG]
"""

from __future__ import annotations

import sys
import time

from governance import training
from governance.config import GovernedModel, load_config
from governance.data.generator import generate_applications


def bare(model: GovernedModel, rows: int) -> float:
    start = time.perf_counter()
    frame = generate_applications(rows, seed=model.source.generator.seed)
    split = training.split(model, frame)
    pipeline = training.fit(model, split.train)
    training.score(pipeline, model, split.test)
    return time.perf_counter() - start


if __name__ == "__main__":
    model = load_config(sys.argv[1] if len(sys.argv) > 1 else "governance.yaml").model("credit_scoring")
    print(f"bare training, {model.source.generator.rows:,} rows: {bare(model, model.source.generator.rows):.2f} s")
    print(f"finished {time.time()}")  # read by pipeline_overhead.py's fresh-process comparison
