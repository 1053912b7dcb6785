"""Every numeric feature has a finite range in the data contract, so the scoring schema refuses a huge value."""

import pydantic
import pytest

from governance.config import load_config
from governance.data.generator import generate_applications
from governance.serving.schema import ApplicationSchema
from tests.helpers import REPO


def test_a_huge_savings_balance_is_refused_by_the_scoring_schema():
    model = load_config(REPO / "governance.yaml").model("credit_scoring")
    schema = ApplicationSchema(model).pydantic
    row = generate_applications(3, seed=1).iloc[0]
    body = {c: (row[c].item() if hasattr(row[c], "item") else row[c]) for c in model.feature_columns}
    schema(**body)  # a real application passes
    with pytest.raises(pydantic.ValidationError, match="savings_balance"):
        schema(**{**body, "savings_balance": 1e308})
    numeric = [
        c
        for c in model.feature_columns
        if model.contract[c].kind in ("integer", "number") and not model.contract[c].values
    ]
    assert numeric and all(model.contract[c].max is not None and model.contract[c].min is not None for c in numeric)
