"""Validating a data snapshot against its contract with Great Expectations.

The suite is derived from the model's configuration: the exact column set,
each column's type, range, allowed values and nulls, at least two target
classes, unique ids and a minimum row count. The results kept are counts and
percentages only, never the unexpected values or row indexes that Great
Expectations would otherwise embed. Each failure line, for the person who
fixes the file, names the column, how many rows, and the first few of them
(data rows, 1 = the first row after the header) with their values, except the
values of protected attributes and the columns they are computed from.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from governance.config import ColumnSpec, GovernedModel
from governance.digests import canonical_json, digest_of
from governance.errors import GovernanceError
from governance.settings import Settings

SUITE_VERSION = 1
_SHOWN = 5  # offending rows named in a failure line
# Only these result fields survive; anything else GX reports may hold row values.
_KEPT_RESULT_FIELDS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count")
_TABLE_LEVEL = {
    "expect_table_columns_to_match_set",
    "expect_table_row_count_to_be_between",
    "expect_column_distinct_values_to_equal_set",
    "expect_column_values_to_be_in_type_list",
}
# GX names pandas' nullable dtypes by their class ("Int64Dtype"): "Int64" matched nothing, and a nullable integer
# column with gaps (read as Int64, `source.read_dataset`) failed its type check.
_DTYPES = {
    "integer": ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "Int64Dtype"],
    "number": ["float16", "float32", "float64", "Float64Dtype", "int8", "int16", "int32", "int64", "Int64Dtype"],
    "boolean": ["bool", "BooleanDtype"],
}


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of one suite run over one snapshot."""

    model: str
    data_md5: str
    suite: str
    passed: bool
    evaluated: int
    failures: list[str]
    results: list[dict] = field(repr=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def digest(self) -> str:
        return digest_of(self.to_dict())


def validation_path(settings: Settings, model: str, md5: str) -> Path:
    """Where the validation of one data snapshot is kept (one file per snapshot md5)."""
    return settings.model_dir(model) / "validation" / f"{md5}.json"


def save_validation(settings: Settings, report: ValidationReport, snapshot: dict) -> Path:
    """Store the report with the snapshot's facts; the summary (with the report digest) is what others cite."""
    path = validation_path(settings, report.model, report.data_md5)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(canonical_json({"snapshot": snapshot, "digest": report.digest, **report.to_dict()}))
    return path


def load_validation(settings: Settings, model: str, md5: str) -> dict:
    path = validation_path(settings, model, md5)
    if not path.is_file():
        raise GovernanceError(f"{path}: no validation result for data snapshot {md5}")
    return json.loads(path.read_bytes())


def validate(model: GovernedModel, frame: pd.DataFrame, data_md5: str) -> ValidationReport:
    """Run the model's suite over `frame`; never raises for bad data, reports it."""
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    # GX reads this as a mapping (validator: `"globally" in progress_bars`); its setter is annotated otherwise.
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    batch = (
        context.data_sources.add_pandas("source")
        .add_dataframe_asset(model.name)
        .add_batch_definition_whole_dataframe("snapshot")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name(model), expectations=expectations(model)))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="snapshot", data=batch, suite=suite))
    # GX takes the whole frame's non-null rows of a column for each column expectation and only reads
    # them: under copy-on-write, where that is every row, no copy is made (half the suite's time at 1M rows).
    with pd.option_context("mode.copy_on_write", True):
        outcome = definition.run(
            batch_parameters={"dataframe": _widened_integers(frame)},
            result_format={"result_format": "BASIC", "partial_unexpected_count": 0},
        )
    results = [_clean(r.to_json_dict()) for r in outcome.results]
    missing = set(model.contract) - set(frame.columns)  # already named by the schema expectation
    failed = [r for r in results if not r["success"] and r["kwargs"].get("column") not in missing]
    failures = [line for r in failed if (line := _with_rows(model, frame, r))]
    return ValidationReport(
        model=model.name,
        data_md5=data_md5,
        suite=suite.name,
        passed=not failures,
        evaluated=len(results),
        failures=failures,
        results=results,
    )


def _widened_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """Narrow integer columns as int64 (lossless): GX's pandas range check is vectorised only for int64 and
    float64 columns and calls a Python function per row otherwise (seconds at a million rows)."""
    narrow = {
        c: "int64"
        for c, t in frame.dtypes.items()
        if pd.api.types.is_integer_dtype(t) and not pd.api.types.is_extension_array_dtype(t) and t.itemsize < 8
    }
    return frame.astype(narrow) if narrow else frame


def suite_name(model: GovernedModel) -> str:
    return f"{model.name}.applications.v{SUITE_VERSION}"


def expectations(model: GovernedModel) -> list:
    """The expectations the config implies, in a stable order."""
    import great_expectations.expectations as gxe

    contract = model.contract
    suite = [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(contract), exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(min_value=model.min_rows),
        gxe.ExpectColumnValuesToBeUnique(column=model.id_column),
        gxe.ExpectColumnDistinctValuesToEqualSet(
            column=model.target, value_set=list(contract[model.target].values or ())
        ),
    ]
    for column, spec in contract.items():
        suite.extend(_column_expectations(gxe, column, spec))
    return suite


def _column_expectations(gxe, column: str, spec: ColumnSpec) -> list:
    # A category column is defined by its allowed values (checked below), whatever its dtype.
    found = (
        []
        if spec.kind == "category"
        else [gxe.ExpectColumnValuesToBeInTypeList(column=column, type_list=_DTYPES[spec.kind])]
    )
    if not spec.nullable:
        found.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
    if spec.values is not None:
        found.append(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(spec.values)))
    if spec.min is not None or spec.max is not None:
        found.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=spec.min, max_value=spec.max))
    return found


def _clean(raw: dict) -> dict:
    config = raw["expectation_config"]
    kind = config["type"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
    result = raw.get("result") or {}
    kept = {k: result[k] for k in _KEPT_RESULT_FIELDS if k in result}
    if kind in _TABLE_LEVEL and "observed_value" in result:
        kept["observed_value"] = result["observed_value"]
    if kind == "expect_table_columns_to_match_set":
        kept["mismatched"] = (result.get("details") or {}).get("mismatched")
    error = raw.get("exception_info") or {}
    if error.get("raised_exception"):
        kept["error"] = str(error.get("exception_message", "")).splitlines()[0][:200]
    return {"expectation": kind, "kwargs": kwargs, "success": bool(raw["success"]), "result": kept}


def _with_rows(model: GovernedModel, frame: pd.DataFrame, r: dict) -> str | None:
    """The failure's line with the first offending rows (and values); None for a range check GX could not run
    on a column that is not numeric (its type line names the values that are not numbers)."""
    column = r["kwargs"].get("column")
    if column not in frame:
        return _describe(r)
    series = frame[column]
    numbers = pd.to_numeric(series, errors="coerce") if r["expectation"] in _NUMERIC_CHECKS else series
    if r["expectation"] == "expect_column_values_to_be_in_type_list":
        return _type_failure(model, column, series, numbers, r)
    if r["expectation"] == "expect_column_distinct_values_to_equal_set" and "error" not in r["result"]:
        return _classes_failure(column, series, list(r["kwargs"]["value_set"]))
    values = True
    match r["expectation"]:
        case "expect_column_values_to_not_be_null":
            bad, values = series.isna(), False
        case "expect_column_values_to_be_in_set":
            bad = series.notna() & ~series.isin(r["kwargs"]["value_set"])
        case "expect_column_values_to_be_unique":
            bad = series.notna() & series.duplicated(keep=False)
        case "expect_column_values_to_be_between":
            low, high = r["kwargs"].get("min_value"), r["kwargs"].get("max_value")
            bad = numbers.notna() & (
                (numbers < low if low is not None else False) | (numbers > high if high is not None else False)
            )
            if "unexpected_count" not in r["result"]:
                if not bad.any():
                    return None
                r = {**r, "result": {**r["result"], "unexpected_count": int(bad.sum()), "element_count": len(series)}}
        case _:
            return _describe(r)
    return f"{_describe(r)}: {_rows(model, column, series, bad, values)}" if bad.any() else _describe(r)


_SHOWN_VALUES = 5
_NUMERIC_CHECKS = {"expect_column_values_to_be_between", "expect_column_values_to_be_in_type_list"}


def _type_failure(model: GovernedModel, column: str, series: pd.Series, numbers: pd.Series, r: dict) -> str:
    """A numeric column with values that are not numbers names them; an integer column read as decimals names
    the values that are not whole, or the empty rows that made it decimal."""
    spec = model.contract[column]
    if spec.kind not in ("number", "integer"):
        return _describe(r)
    text = series.notna() & numbers.isna()
    if text.any():
        return f"column {column!r}: {int(text.sum())} of {len(series)} rows are not numbers: {_rows(model, column, series, text)}"
    fraction = numbers.notna() & (numbers % 1 != 0)
    if spec.kind == "integer" and fraction.any():
        return (
            f"column {column!r}: {int(fraction.sum())} of {len(series)} rows are not whole numbers: "
            f"{_rows(model, column, series, fraction)}"
        )
    if spec.kind == "integer" and series.isna().any():
        empty = _rows(model, column, series, series.isna(), values=False)
        return f"{_describe(r)} (whole numbers with empty values are read as decimals: {empty})"
    return _describe(r)


def _classes_failure(column: str, series: pd.Series, wanted: list) -> str:
    """The target's classes the data lacks, and the first few it has beyond them, by value."""
    observed = sorted(series.dropna().unique().tolist(), key=str)
    extra = [v for v in observed if v not in wanted]
    more = f" and {len(extra) - _SHOWN_VALUES} more" if len(extra) > _SHOWN_VALUES else ""
    shown = f", unexpected: {extra[:_SHOWN_VALUES]}{more}" if extra else ""
    absent = [v for v in wanted if v not in observed]
    return f"column {column!r}: the target needs both classes {wanted}; absent: {absent}{shown}"


def _rows(model: GovernedModel, column: str, series: pd.Series, bad: pd.Series, values: bool = True) -> str:
    """`row(s) 5 ('12O00'), 9 (-3) and 3 more`: data rows (1 = the first after the header) with their values,
    except where they are empty or are a protected attribute's (or those of a column one is computed from)."""
    positions = np.flatnonzero(bad.to_numpy())
    values = values and column not in model.protected_columns and column not in model.protected_sources
    shown = [f"{p + 1} ({_plain(series.iloc[p])!r})" if values else str(p + 1) for p in positions[:_SHOWN]]
    more = len(positions) - len(shown)
    return "row(s) " + ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _describe(r: dict) -> str:
    """One line a data engineer can act on, naming the column and what is wrong."""
    kind, kwargs, result = r["expectation"], r["kwargs"], r["result"]
    column = kwargs.get("column")
    if "error" in result:
        return f"column {column!r}: {result['error']}" if column else result["error"]
    bad = f"{result.get('unexpected_count', '?')} of {result.get('element_count', '?')} rows"
    match kind:
        case "expect_table_columns_to_match_set":
            mismatch = result.get("mismatched") or {}
            parts = [
                f"missing columns {mismatch['missing']}" if mismatch.get("missing") else "",
                f"unexpected columns {mismatch['unexpected']}" if mismatch.get("unexpected") else "",
            ]
            return "schema: " + ("; ".join(p for p in parts if p) or "column set differs from the contract")
        case "expect_table_row_count_to_be_between":
            return f"row count {result.get('observed_value')} is below the minimum {kwargs['min_value']}"
        case "expect_column_values_to_be_unique":
            return f"column {column!r}: {bad} have duplicated ids"
        case "expect_column_distinct_values_to_equal_set":
            absent, extra = result.get("missing_count", 0), result.get("unexpected_count", 0)
            return (
                f"column {column!r}: the target needs both classes {kwargs['value_set']}: "
                f"{absent} absent, {extra} unexpected"
            )
        case "expect_column_values_to_be_in_type_list":
            return f"column {column!r}: type {result.get('observed_value')} is not one of {kwargs['type_list']}"
        case "expect_column_values_to_not_be_null":
            return f"column {column!r}: {bad} are null"
        case "expect_column_values_to_be_in_set":
            return f"column {column!r}: {bad} are not in {kwargs['value_set']}"
        case "expect_column_values_to_be_between":
            return f"column {column!r}: {bad} are outside [{kwargs.get('min_value')}, {kwargs.get('max_value')}]"
    return f"{kind} failed for {column or 'the table'}"
