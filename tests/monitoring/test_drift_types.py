"""Data drift compares like with like: an integer code reads the same from Parquet with gaps and from JSON."""

import numpy as np

from governance.config import load_config
from governance.data.generator import generate_applications
from governance.monitoring.drift import data_drift
from governance.monitoring.reference import SCORE_COLUMN, Reference
from tests.helpers import REPO


def test_an_integer_code_with_missing_values_in_the_reference_is_not_drift():
    model = load_config(REPO / "governance.yaml").model("credit_scoring")
    frame = generate_applications(3500, seed=11)[model.feature_columns]
    reference_rows = frame.iloc[:3000].copy()
    reference_rows.loc[reference_rows.index[::100], "existing_customer"] = np.nan  # float64 now: 0.0, 1.0, NaN
    reference_rows[SCORE_COLUMN] = 0.5
    reference = Reference(
        model="credit_scoring",
        version=1,
        artifact_sha256="a" * 64,
        rows=reference_rows,
        sha256="b" * 64,
        card=None,
        card_problem="not needed here",
    )
    window = frame.iloc[3000:].copy()  # as logged JSON decodes: int64
    assert reference_rows["existing_customer"].dtype == np.float64 and window["existing_customer"].dtype == np.int64

    measurement, _ = data_drift(model, reference, window, full_report=True)
    tests = {t["feature"]: t for t in measurement.details["by_feature"]}
    assert not tests["existing_customer"]["drifted"] and tests["existing_customer"]["score"] < 0.05
