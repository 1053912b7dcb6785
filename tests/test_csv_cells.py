"""A user's CSV read as the scoring API reads a request: a category value that pandas would take for a missing
marker ("NA" for North America, "None", "null") stays that value, and a number column's usual markers are missing."""

from __future__ import annotations

import math

from governance.config import load_config
from governance.data.contract import CONTRACT
from governance.data.generator import generate_applications
from governance.data.source import read_dataset
from governance.data.validation import validate
from tests.helpers import small_model, write_config

MARKERS = ["NA", "None", "null", "N/A"]


def test_category_values_that_look_missing_are_values_and_number_markers_are_missing(tmp_path):
    frame = generate_applications(8, seed=3)
    frame["housing"] = [*MARKERS, "own", "rent", "own", ""]
    frame["annual_income"] = frame["annual_income"].astype(object)
    frame.loc[0, "annual_income"], frame.loc[1, "annual_income"] = "NA", "null"
    csv = tmp_path / "apps.csv"
    frame.to_csv(csv, index=False)
    columns = {**CONTRACT, "housing": {**CONTRACT["housing"], "values": [*MARKERS, "own", "rent"], "nullable": True}}
    config = load_config(write_config(tmp_path / "governance.yaml", {"credit_scoring": small_model(columns=columns)}))

    read = read_dataset(config.model("credit_scoring"), csv)

    assert list(read["housing"].iloc[:7]) == [*MARKERS, "own", "rent", "own"]
    assert read["housing"].isna().tolist() == [False] * 7 + [True]  # only the empty cell is missing
    assert math.isnan(read.loc[0, "annual_income"]) and math.isnan(read.loc[1, "annual_income"])
    assert read["annual_income"].dtype.kind == "f"  # still a number column


def test_markers_are_missing_in_an_integer_coded_category_and_nullable_booleans_pass_the_contract(tmp_path):
    """Only a category whose values include a marker reads it as a value: in one coded 1, 2, 3 an R export's NA
    is a missing value. A nullable boolean with gaps is read as pandas' boolean and passes its type check."""
    frame = generate_applications(300, seed=3)
    frame["segment"] = (["1", "2", "3", "NA", ""] * 60)[:300]
    frame["guarantor"] = (["True", "False", ""] * 100)[:300]
    csv = tmp_path / "apps.csv"
    frame.to_csv(csv, index=False)
    columns = {
        **CONTRACT,
        "segment": {"kind": "category", "values": [1, 2, 3], "nullable": True},
        "guarantor": {"kind": "boolean", "nullable": True},
    }
    model = load_config(
        write_config(tmp_path / "governance.yaml", {"credit_scoring": small_model(columns=columns, min_rows=200)})
    ).model("credit_scoring")

    read = read_dataset(model, csv)

    assert read["segment"].isna().sum() == 120 and set(read["segment"].dropna()) == {1, 2, 3}
    assert str(read["guarantor"].dtype) == "boolean" and read["guarantor"].isna().sum() == 100
    report = validate(model, read, "0" * 32)
    assert report.passed, report.failures
