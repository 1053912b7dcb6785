"""Reading a governed model's source data (the generator, a CSV or a Parquet file)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import pandas as pd

from governance.config import GovernedModel
from governance.data.generator import generate_applications
from governance.data.snapshot import cached_path
from governance.digests import file_md5
from governance.errors import GovernanceError
from governance.settings import Settings


class DataError(GovernanceError):
    """A data file cannot be read as a table. The message names the file."""


# The cells pandas reads as missing by default (its read_csv documentation), missing in every column but where a
# category's values include one: there "NA" (North America), "None" or "null" is a value like any other, as it is
# in a JSON request to the scoring API.
MISSING_MARKERS = (
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"),
    *("NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
)


def generate(model: GovernedModel, **overrides) -> tuple[pd.DataFrame, str]:
    """The generator's frame for a generator-sourced model, and a description of exactly what was generated.

    `overrides` replace the configured knobs (rows, seed, bias, drift, proxy) for one run, e.g. a scenario.
    """
    spec = model.source.generator
    if spec is None:
        raise DataError(f"model {model.name!r} reads {model.source.file and model.source.file.path}, not the generator")
    knobs = {**spec.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    described = "generator(" + ", ".join(f"{k}={v}" for k, v in knobs.items()) + ")"
    return generate_applications(**knobs), described


def read_dataset(model: GovernedModel, path: str | Path) -> pd.DataFrame:
    """Read a snapshot; text columns the contract calls categories become pandas categoricals."""
    literal = {c: [str(v) for v in spec.values or ()] for c, spec in model.contract.items() if spec.kind == "category"}
    frame = read_table(path, literal=literal)
    for column, spec in model.contract.items():
        if column not in frame:
            continue
        if spec.kind == "category" and frame[column].dtype == object:
            frame[column] = frame[column].astype("category")
        elif spec.kind == "integer" and spec.nullable and _whole_with_gaps(frame[column]):
            frame[column] = frame[column].astype("Int64")  # pandas reads whole numbers with gaps as decimals
        elif spec.kind == "boolean" and spec.nullable and _booleans_with_gaps(frame[column]):
            frame[column] = frame[column].astype("boolean")  # and true/false with gaps as objects
    return frame


def _whole_with_gaps(values: pd.Series) -> bool:
    present = values.dropna()
    return (
        pd.api.types.is_float_dtype(values)
        and bool((present % 1 == 0).all())
        and bool((present.abs() < 2**63).all())  # beyond int64 the contract's range check names the rows
    )


def _booleans_with_gaps(values: pd.Series) -> bool:
    return values.dtype == object and bool(values.dropna().map(lambda v: isinstance(v, bool)).all())


def read_snapshot(settings: Settings, model: GovernedModel, md5: str) -> pd.DataFrame:
    """The immutable snapshot with this md5, from the DVC cache, refused if its bytes no longer have that md5."""
    path = cached_path(settings, md5)
    actual = file_md5(path)
    if actual != md5:
        raise DataError(f"{path}: data snapshot {md5} changed on disk (its md5 is now {actual}); it is not used")
    return read_dataset(model, path)


def read_table(path: str | Path, literal: Mapping[str, Collection[str]] | None = None) -> pd.DataFrame:
    """Read a CSV (strict UTF-8) or Parquet file, raising DataError that names the file on failure. In a CSV,
    pandas' usual missing markers ("", "NA", "null", ...) are missing values, except in a `literal` column those
    of its values it lists (a category whose values include "NA" reads "NA" as that value)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        if _is_parquet(path):
            return pd.read_parquet(path)
        return pd.read_csv(
            path,
            encoding="utf-8",
            encoding_errors="strict",
            low_memory=False,
            keep_default_na=False,
            na_values=_missing_markers(path, literal or {}),
        )
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no columns to read (empty or blank file)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV: {exc}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as {path.suffix.lstrip('.') or 'a table'}: {exc}") from None


def _missing_markers(path: Path, literal: Mapping[str, Collection[str]]) -> dict[str, list[str]]:
    header = pd.read_csv(path, nrows=0, encoding="utf-8", encoding_errors="strict").columns
    return {column: [m for m in MISSING_MARKERS if m not in literal.get(column, ())] for column in header}


def _is_parquet(path: Path) -> bool:
    """By name, or by magic number for content-addressed copies (the DVC cache has no file names)."""
    if path.suffix.lower() == ".parquet":
        return True
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"
