"""A UTC timestamp is exactly the form `utc_timestamp` writes: a trailing newline (which `$` would let through)
makes it something else."""

from __future__ import annotations

import pytest

from governance.timestamps import parse_utc, utc_timestamp


def test_a_timestamp_with_a_trailing_newline_is_refused():
    stamp = utc_timestamp()
    assert utc_timestamp(parse_utc(stamp)) == stamp
    with pytest.raises(ValueError, match="expected a UTC timestamp"):
        parse_utc(stamp + "\n")
