"""The project's one timestamp form: UTC, ISO 8601, microseconds, trailing Z (2026-11-22T10:00:00.123456Z)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# How far ahead of this machine's clock another's may be before a time it wrote counts as in the future.
MAX_CLOCK_SKEW = timedelta(minutes=5)

TIMESTAMP_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\Z")  # \Z: no trailing newline


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_timestamp(moment: datetime | None = None) -> str:
    """The timestamp of an aware datetime (now if None); naive datetimes are refused, not guessed."""
    moment = moment or utc_now()
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no time zone; use an aware UTC datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    """Inverse of `utc_timestamp`; anything else is refused."""
    if not isinstance(text, str) or not TIMESTAMP_PATTERN.match(text):
        raise ValueError(f"expected a UTC timestamp like 2026-11-22T10:00:00.000000Z, got {text!r}")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
