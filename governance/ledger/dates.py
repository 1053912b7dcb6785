"""Which ledger entries carry a date set by hand, read incrementally by a long-lived reader (see `Ledger.misdated`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from governance.timestamps import MAX_CLOCK_SKEW, TIMESTAMP_PATTERN, parse_utc, utc_now, utc_timestamp


class EntryDates:
    """The dates read so far: through which entry (and that entry's hash, so a rewritten tail is noticed), the
    latest date, and the entries dated more than the clock skew before an entry appended earlier."""

    def __init__(self) -> None:
        self.through, self.through_hash, self.latest = 0, "", ""
        self.misdated: frozenset[int] = frozenset()

    def still_reads(self, first: Sequence[Any] | None) -> bool:
        """Whether the first row of a read from `through` is the entry last read (if its hash changed, the chain
        was rewritten from it or before; if it is gone, truncated)."""
        return self.through == 0 or (first is not None and (first[0], first[2]) == (self.through, self.through_hash))

    def add(self, rows: Sequence[Sequence[Any]]) -> frozenset[int]:
        """Read the dates of rows (seq, ts, entry_hash) appended after `through`, oldest first. An entry dated
        beyond the clock skew ahead of now is misdated itself, and dates nothing after it. Timestamps of the one
        format order as strings, so a date is parsed only for an entry dated before one appended earlier (1M
        entries: 2.2 s, against 15.3 s when each date was parsed twice)."""
        found, future = set[int](), utc_timestamp(utc_now() + MAX_CLOCK_SKEW)
        floor_of, floor = "", ""
        for seq, ts, _ in rows[1:] if rows and rows[0][0] <= self.through else rows:
            if not isinstance(ts, str) or not TIMESTAMP_PATTERN.match(ts) or ts > future:
                found.add(seq)
            elif ts >= self.latest:
                self.latest = ts
            else:
                if floor_of != self.latest:
                    floor_of, floor = self.latest, utc_timestamp(parse_utc(self.latest) - MAX_CLOCK_SKEW)
                if ts < floor:
                    found.add(seq)
        if rows:
            self.through, self.through_hash = rows[-1][0], rows[-1][2]
        if found:
            self.misdated = self.misdated | found
        return self.misdated
