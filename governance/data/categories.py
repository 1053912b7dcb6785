"""Category values as text, the same however the values were read."""

from __future__ import annotations

import pandas as pd


def category_text(values: pd.Series) -> pd.Series:
    """Each value as its label: integer codes as integers whatever the dtype (a missing value makes pandas
    read 36 as 36.0), strings as they are; every missing value (NaN, None) stays missing (None)."""
    if pd.api.types.is_float_dtype(values) and bool((values.dropna() % 1 == 0).all()):
        values = values.astype("Int64")
    return values.astype(str).where(values.notna(), None)
