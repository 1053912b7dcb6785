"""Broken datasets and configs: each fails with an error naming the problem, and nothing downstream exists.

Datasets run through the real graph (Dagster, DVC, Great Expectations, MLflow);
configs fail to load before anything runs.
"""

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from governance.config import ConfigError, load_config
from governance.data.generator import CONTRACT, generate_applications
from programs.cli import app
from programs.failures import run_failures
from tests.helpers import REPO, small_model, write_config

pytestmark = pytest.mark.slow


def _valid_csv(path: Path, rows: int = 1500):
    frame = generate_applications(rows, seed=3)
    frame.to_csv(path, index=False)
    return frame


def _file_model(csv: Path) -> dict:
    model = small_model(source={"file": {"path": str(csv)}}, columns=CONTRACT, min_rows=200)
    return {"credit_scoring": model}


def _break(kind: str, path: Path) -> None:
    frame = generate_applications(1500, seed=3)
    if kind == "missing_column":
        frame = frame.drop(columns=["debt_to_income"])
    elif kind == "extra_column":
        frame["favourite_colour"] = "blue"
    elif kind == "wrong_type":
        frame["annual_income"] = frame["annual_income"].astype(str)
        frame.loc[5, "annual_income"] = "about forty thousand"
    elif kind == "null_target":
        frame["default"] = frame["default"].astype("float")
        frame.loc[[3, 9], "default"] = None
    elif kind == "out_of_range":
        frame.loc[7, "credit_utilisation"] = 7.5
    elif kind == "single_class":
        frame["default"] = 0
    elif kind == "duplicated_ids":
        frame.loc[10, "application_id"] = frame.loc[11, "application_id"]
    elif kind == "unknown_category":
        frame["housing"] = frame["housing"].astype(str)
        frame.loc[4, "housing"] = "castle"
    elif kind == "too_few_rows":
        frame = frame.head(50)
    elif kind == "bad_target_value":
        frame.loc[2, "default"] = 2
    frame.to_csv(path, index=False)


DATASET_CASES = {
    "missing_column": "missing columns ['debt_to_income']",
    "extra_column": "unexpected columns ['favourite_colour']",
    "wrong_type": "column 'annual_income': 1 of 1500 rows are not numbers: row(s) 6 ('about forty thousand')",
    "null_target": "column 'default': 2 of 1500 rows are null: row(s) 4, 10",
    "out_of_range": "column 'credit_utilisation': 1 of 1500 rows are outside [0.0, 2.0]: row(s) 8 (7.5)",
    "single_class": "column 'default': the target needs both classes [0, 1]; absent: [1]",
    "duplicated_ids": "column 'application_id': 2 of 1500 rows have duplicated ids",
    "unknown_category": "column 'housing': 1 of 1500 rows are not in",
    "too_few_rows": "row count 50 is below the minimum 200",
    "bad_target_value": "column 'default': 1 of 1500 rows are not in [0, 1]",
}

UNREADABLE_CASES = {
    "empty_file": (b"", "the file is empty"),
    "not_utf8": ("application_id,sex\n1,M\u00e4nnlich\n".encode("latin-1"), "not UTF-8 text (byte 0xe4"),
    "blank_file": (b"\n\n", "no columns to read"),
}


def _failure_text(result) -> str:
    texts = [_with_causes(e.event_specific_data.error) for e in result.all_events if e.is_step_failure]
    texts += [
        e.event_specific_data.description or ""
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed
    ]
    return "\n".join(texts)


def _with_causes(error) -> str:
    return error.message + ("\n" + _with_causes(error.cause) if error.cause else "")


def _assert_nothing_downstream(life, key: str) -> None:
    for asset in ("trained_model", "performance_report", "fairness_report", "explainability_report", "model_card"):
        assert not life.materialized("credit_scoring", asset, key), f"{asset} was materialized"
    assert life.registry.latest_version("credit_scoring") == 0
    assert not life.registry.client.search_registered_models()


@pytest.mark.parametrize("kind", sorted(DATASET_CASES))
def test_broken_dataset_blocks_training(kind, tmp_path, lifecycle):
    csv = tmp_path / f"{kind}.csv"
    _valid_csv(csv)  # the config's load checks the header; the file breaks after it
    life = lifecycle(write_config(tmp_path / "governance.yaml", _file_model(csv)))
    _break(kind, csv)
    key, result = life.candidate()
    assert not result.success
    assert DATASET_CASES[kind] in _failure_text(result)
    check = life.instance.get_latest_asset_check_evaluation_record(
        __import__("dagster").AssetCheckKey(
            __import__("dagster").AssetKey(["credit_scoring", "validated_applications"]), "data_contract"
        )
    )
    assert check is not None and not check.event.dagster_event.event_specific_data.passed
    _assert_nothing_downstream(life, key)


@pytest.mark.parametrize("kind", sorted(UNREADABLE_CASES))
def test_unreadable_file_fails_naming_it(kind, tmp_path, lifecycle):
    content, message = UNREADABLE_CASES[kind]
    csv = tmp_path / f"{kind}.csv"
    _valid_csv(csv)  # the config's load checks the header; the file breaks after it
    life = lifecycle(write_config(tmp_path / "governance.yaml", _file_model(csv)))
    csv.write_bytes(content)
    key, result = life.candidate()
    text = _failure_text(result)
    assert not result.success and str(csv) in text and message in text
    reasons = run_failures(life.instance, result.run_id)  # what `govern train` and `govern status` print
    assert reasons[0].startswith(f"credit_scoring/applications: DataError: {csv}: ") and message in reasons[0]
    assert "Traceback" not in "".join(reasons) and "dagster" not in "".join(reasons)
    assert not life.materialized("credit_scoring", "applications")
    _assert_nothing_downstream(life, key)


def test_a_valid_file_source_passes_the_same_checks(tmp_path, lifecycle):
    csv = tmp_path / "good.csv"
    _valid_csv(csv)
    life = lifecycle(write_config(tmp_path / "governance.yaml", _file_model(csv)))
    key, result = life.candidate()
    assert life.materialized("credit_scoring", "model_card", key), _failure_text(result)
    assert life.registry.latest_version("credit_scoring") == 1


def test_a_nullable_integer_with_empty_and_na_cells_trains_and_scores_its_gaps_as_missing(tmp_path, lifecycle):
    """pandas reads whole numbers with gaps as decimals; a nullable integer column is read back as integers
    with missing values, so the contract passes and the version trains, explains and scores a null."""
    csv = tmp_path / "gaps.csv"
    frame = _valid_csv(csv).astype({"dependents": object})
    frame.loc[frame.index[::50], "dependents"] = ""
    frame.loc[frame.index[25::50], "dependents"] = "NA"
    frame.to_csv(csv, index=False)
    columns = {**CONTRACT, "dependents": {**CONTRACT["dependents"], "nullable": True}}
    model = small_model(source={"file": {"path": str(csv)}}, columns=columns, min_rows=200)
    life = lifecycle(write_config(tmp_path / "governance.yaml", {"credit_scoring": model}))
    key, result = life.candidate()
    assert life.materialized("credit_scoring", "model_card", key), _failure_text(result)
    registered = life.registry.version("credit_scoring", 1)
    pipeline = life.registry.load(registered, registered.artifact_sha256)
    features = life.config.model("credit_scoring").feature_columns
    records = generate_applications(2, seed=4)[features].to_dict(orient="records")
    records[0]["dependents"] = None  # a request's null, framed as serving frames a batch
    scores = pipeline.predict_proba(pd.DataFrame(records, columns=features))[:, 1]
    assert len(scores) == 2 and all(0 <= s <= 1 for s in scores)


CONFIG_CASES = {
    "protected_as_feature": (
        {"features": ["annual_income", "sex"]},
        "model 'credit_scoring': features: 'sex' is a protected attribute",
    ),
    "protected_source_as_feature": (
        {"features": ["annual_income", "age"]},
        "features: 'age' is the source of protected attribute 'age_band' and may never be "
        "a model feature (remove it from features)",
    ),
    "unknown_estimator": ({"estimator": {"kind": "neural_net"}}, "field 'estimator.kind'"),
    "unknown_field": ({"flavour": "blue"}, "field 'flavour': unknown key (allowed: columns, decisioning, "),
    "mistyped_field": ({"risk_teir": "high"}, "field 'risk_teir': unknown key; did you mean 'risk_tier'? (allowed: "),
    "mistyped_nested_field": (
        {"evaluation": {"shap_sample_row": 200}},
        "field 'evaluation.shap_sample_row': unknown key; did you mean 'shap_sample_rows'? "
        "(allowed: bootstrap_samples, confidence, min_group_size, proxy_encoding_strength, "
        "proxy_flag_strength, shap_sample_rows, test_fraction)",
    ),
    "mistyped_column_field": (
        {"columns": {**CONTRACT, "loan_amount": {"kind": "number", "maximum": 5}}},
        "field 'columns.loan_amount.maximum': unknown key; did you mean 'max'? (allowed: kind, "
        "max, min, nullable, values)",
    ),
    "removed_field": (
        {"evaluation": {"proxy_top_k": 5}},
        "field 'evaluation.proxy_top_k': no longer used: every feature is proxy-screened",
    ),
    "numeric_protected_without_bands": (
        {"protected_attributes": [{"column": "age"}]},
        "protected_attributes.age: a numeric column needs bands (left-closed edges)",
    ),
    "banded_reference_not_a_band": (
        {"protected_attributes": [{"column": "age", "bands": [18, 40, 101], "reference": "18-40"}]},
        "protected_attributes.age: reference '18-40' is not one of its groups ('[18.0, 40.0)', '[40.0, 101.0)')",
    ),
    "bands_not_covering_the_contract": (
        {"protected_attributes": [{"column": "age", "bands": [25, 30, 40, 50, 60]}]},
        "protected_attributes.age: bands [25, 30, 40, 50, 60] do not cover columns.age (min 18, max 100): values "
        "18 up to 25 (below the first edge) and 60 to 100 (bands are left-closed: the last edge is in no band) fall "
        "in no group; e.g. bands: [18, 25, 30, 40, 50, 60, 101]",
    ),
    "last_band_edge_at_the_contract_max": (
        {"protected_attributes": [{"column": "age", "bands": [18, 30, 40, 50, 100]}]},
        "protected_attributes.age: bands [18, 30, 40, 50, 100] do not cover columns.age (min 18, max 100): values "
        "100 (bands are left-closed: the last edge is in no band) fall in no group; e.g. bands: [18, 30, 40, 50, 101]",
    ),
    "bands_on_a_column_without_a_max": (
        {
            "columns": {**CONTRACT, "age": {"kind": "integer", "min": 18}},
            "protected_attributes": [{"column": "age", "bands": [18, 40, 101]}],
        },
        "protected_attributes.age: columns.age has no max, so its bands cannot be shown to cover every value; "
        "give the column a max",
    ),
    "numeric_feature_without_range": (
        {"columns": {**CONTRACT, "loan_amount": {"kind": "number", "min": 0}}},
        "columns.loan_amount: a numeric feature needs a finite range; add max",
    ),
    "reason_for_a_column_not_in_the_contract": (
        {"reason_codes": {"salary": "Income"}},
        "reason_codes.salary: 'salary' is not a column of the data contract",
    ),
    "feature_without_contract": (
        {"features": ["annual_income", "bank_tenure"]},
        "model 'credit_scoring': columns: no contract for bank_tenure (named in features); add each to columns "
        "with its kind (and min and max, or its values)",
    ),
    "excluded_column_without_contract": (
        {"exclude": ["age", "postcode"]},
        "columns: no contract for postcode (named in exclude); add each to columns",
    ),
    "bad_tier": ({"risk_tier": "extreme"}, "field 'risk_tier'"),
    "file_without_contract": ({"source": {"file": {"path": "data.csv"}}}, "a file source needs its data contract"),
    "wrong_file_type": ({"source": {"file": {"path": "data.xlsx"}}}, "unsupported data file type '.xlsx'"),
    "favourable_not_a_target_value": ({"favourable_outcome": 7}, "including favourable_outcome 7"),
    "protected_band_on_text": (
        {"protected_attributes": [{"column": "sex", "bands": [0, 1]}]},
        "bands need a numeric column",
    ),
    "reference_group_not_a_value": (
        {"protected_attributes": [{"column": "sex", "reference": "male"}]},
        "protected_attributes.sex: reference 'male' is not one of its groups ('F', 'M')",
    ),
    "linear_model_with_nullable_feature": (
        {
            "estimator": {"kind": "logistic_regression"},
            "columns": {**CONTRACT, "annual_income": {**CONTRACT["annual_income"], "nullable": True}},
        },
        "columns.annual_income: nullable, but logistic_regression cannot take missing values",
    ),
    "too_many_categories_to_explain": (
        {"columns": {**CONTRACT, "housing": {"kind": "category", "values": [f"h{i}" for i in range(30)]}}},
        "columns.housing: 30 categories (a missing value counts), but SHAP explains a hist_gradient_boosting model's categorical splits "
        "of at most 24",
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_broken_config_names_file_model_and_field(case, tmp_path):
    overrides, message = CONFIG_CASES[case]
    path = write_config(tmp_path / "governance.yaml", {"credit_scoring": small_model(**overrides)})
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_every_problem_of_a_model_is_reported_not_only_the_first(tmp_path):
    """Its cross-field checks all run: a protected feature, a feature without a contract, an unbanded numeric
    attribute and a reason for no column are four problems, one each (`govern config check` prints a line each)."""
    model = small_model(
        features=["annual_income", "sex", "bank_tenure"],
        protected_attributes=[{"column": "sex"}, {"column": "age"}],
        reason_codes={"salary": "Income"},
    )
    path = write_config(tmp_path / "governance.yaml", {"credit_scoring": model})
    with pytest.raises(ConfigError) as error:
        load_config(path)
    where = f"{path}: model 'credit_scoring': "
    assert error.value.problems == [
        where + "features: 'sex' is a protected attribute and may never be a model feature (remove it from features)",
        where + "columns: no contract for bank_tenure (named in features); add each to columns with its kind "
        "(and min and max, or its values)",
        where + "protected_attributes.age: a numeric column needs bands (left-closed edges), else every distinct "
        "value is a group; e.g. bands: [18, 30, 40, 50, 65, 101], or give the column its values",
        where + "reason_codes.salary: 'salary' is not a column of the data contract (add it to columns, or remove "
        "this reason)",
    ]


HEADER_CASES = {
    "extra_column": (
        lambda frame: frame.assign(favourite_colour="blue"),
        [
            "the file has columns with no contract: favourite_colour (add each to columns, with exclude if it is not a "
            "feature)"
        ],
    ),
    "missing_column": (
        lambda frame: frame.drop(columns=["debt_to_income"]),
        [
            "columns in the contract are not in the file: debt_to_income (remove each from columns, or give the file "
            "the column)"
        ],
    ),
    "extra_and_missing": (
        lambda frame: frame.rename(columns={"debt_to_income": "dti"}),
        [
            "the file has columns with no contract: dti (add each to columns, with exclude if it is not a feature)",
            "columns in the contract are not in the file: debt_to_income (remove each from columns, or give the file "
            "the column)",
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_a_csv_whose_header_differs_from_the_contract_is_refused_on_load(case, tmp_path):
    """The header is read when the config loads, before anything runs; each problem names the config, the model,
    the field, the data file and the fix."""
    change, expected = HEADER_CASES[case]
    csv = tmp_path / "applications.csv"
    change(generate_applications(200, seed=3)).to_csv(csv, index=False)
    path = write_config(tmp_path / "governance.yaml", _file_model(csv))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.problems == [f"{path}: model 'credit_scoring': field 'columns': {csv}: {e}" for e in expected]


def test_config_that_is_not_utf8_or_not_yaml(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("models:\n  cr\u00e9dit: {}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(latin)
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_a_model_defined_twice_is_refused_not_silently_replaced(tmp_path):
    """YAML keeps the last of two equal keys; a second `credit_scoring:` must not quietly replace the first."""
    config = (REPO / "governance.yaml").read_text()
    twice = tmp_path / "governance.yaml"
    twice.write_text(config + config[config.index("  credit_scoring:") :])  # `models:` is the last section
    with pytest.raises(
        ConfigError, match=r"governance\.yaml: model 'credit_scoring': defined twice \(lines \d+ and \d+\)"
    ):
        load_config(twice)


def test_unknown_model_is_named_by_the_cli(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "--home",
            str(tmp_path / "govern"),
            "--config",
            str(Path(__file__).parent / "configs" / "small.yaml"),
            "demo",
            "--model",
            "mortgage",
        ],
    )
    assert result.exit_code != 0
    assert "unknown model 'mortgage' (governed models: credit_scoring)" in str(result.exception) + result.output


def test_narrow_integer_columns_are_range_checked_and_left_as_they_are(tmp_path):
    """Narrow integer columns, as a file may have, go through GX's vectorised range check (widened for it,
    not in place)."""
    from governance.data.validation import validate

    model = load_config(write_config(tmp_path / "governance.yaml", _file_model(tmp_path / "unused.csv"))).model(
        "credit_scoring"
    )
    frame = generate_applications(1500, seed=3).astype({"age": "int16", "dependents": "int8"})
    frame.loc[[5, 6], "age"] = 150
    report = validate(model, frame, "md5")
    assert "column 'age': 2 of 1500 rows are outside [18.0, 100.0]: row(s) 6 (150), 7 (150)" in report.failures
    assert str(frame["age"].dtype) == "int16"


def test_a_failure_names_its_rows_but_never_a_protected_attributes_values(tmp_path):
    from governance.data.validation import validate

    model = load_config(write_config(tmp_path / "governance.yaml", _file_model(tmp_path / "unused.csv"))).model(
        "credit_scoring"
    )
    frame = generate_applications(1500, seed=3).astype({"sex": str, "loan_purpose": str})  # as read from a file
    frame.loc[[2, 8], "sex"] = "X"
    frame.loc[list(range(20, 30)), "loan_purpose"] = "yacht"
    failures = "\n".join(validate(model, frame, "md5").failures)
    assert "column 'sex': 2 of 1500 rows are not in ['F', 'M']: row(s) 3, 9\n" in failures + "\n"
    assert "'X'" not in failures
    assert (
        "rows are not in" in failures and "row(s) 21 ('yacht'), 22 ('yacht'), 23 ('yacht'), 24 ('yacht'), " in failures
    )
    assert "25 ('yacht') and 5 more" in failures


@pytest.mark.parametrize(
    "serving, problem",
    [
        ({"max_request_bytes": 10}, "field 'serving.max_request_bytes': Input should be greater than or equal to 1024"),
        ({"max_request_bytes": "lots"}, "field 'serving.max_request_bytes': Input should be a valid integer"),
        ({"max_body": 4096}, "field 'serving.max_body': unknown key (allowed: max_request_bytes)"),
    ],
)
def test_a_bad_serving_limit_is_named(tmp_path, serving, problem):
    config = yaml.safe_load((REPO / "governance.yaml").read_text())
    path = tmp_path / "governance.yaml"
    path.write_text(yaml.safe_dump({**config, "serving": serving}))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {problem}")):
        load_config(path)


def test_without_exclude_the_protected_source_column_is_still_never_a_feature(tmp_path):
    """Dropping `exclude: [age]` once made the raw age (age_band's source) a feature the gate allowed."""
    entry = small_model()
    entry.pop("exclude")
    model = load_config(write_config(tmp_path / "governance.yaml", {"credit_scoring": entry})).model("credit_scoring")
    assert "age" not in model.feature_columns and "age_band" not in model.feature_columns
    assert model.protected_sources == {"age": "age_band"}


def test_band_labels_are_the_groups_fairness_reports_name():
    import pandas as pd

    from governance.config import ProtectedAttribute

    attribute = ProtectedAttribute(column="X5", bands=[18, 30, 40.5, 101])
    cut = pd.cut(pd.Series([18, 35, 50]), bins=attribute.bands, right=False).astype(str)
    assert list(cut) == attribute.band_labels == ["[18.0, 30.0)", "[30.0, 40.5)", "[40.5, 101.0)"]
