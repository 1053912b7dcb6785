"""A nullable feature may be sent as null, never left out: a client that drops a field by mistake is refused,
not decided on a missing value (a quietly different decision)."""

import json

import pydantic
import pytest

from governance.config import load_config
from governance.data.contract import CONTRACT
from governance.data.generator import generate_applications
from governance.serving.schema import ApplicationSchema
from tests.helpers import small_model, write_config


def test_a_nullable_feature_left_out_is_refused_and_sent_as_null_is_missing(tmp_path):
    columns = {**CONTRACT, "annual_income": {**CONTRACT["annual_income"], "nullable": True}}
    path = write_config(tmp_path / "governance.yaml", {"credit_scoring": small_model(columns=columns)})
    model = load_config(path).model("credit_scoring")
    schema = ApplicationSchema(model)
    row = generate_applications(1, seed=1)[model.feature_columns].iloc[0]
    body = json.loads(row.to_json())

    sent_null = schema.pydantic.model_validate_json(json.dumps({**body, "annual_income": None}))
    assert schema.split(sent_null)[0]["annual_income"] is None
    left_out = {k: v for k, v in body.items() if k != "annual_income"}
    with pytest.raises(pydantic.ValidationError, match=r"annual_income\n  Field required"):
        schema.pydantic.model_validate_json(json.dumps(left_out))
