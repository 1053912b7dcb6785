"""Retention runs held to account: a payload may be gone only because a credible retention run expired it.

The chain hashes a payload's digest, not the payload, so it cannot tell a payload retention expired from
one removed by hand. Each retention run records its cut-off as a fact (`RetentionApplied`); verify holds
every missing payload to such a run, and the decision log's seals hold forgotten decisions to one the same way.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import Connection, Table, select

from governance.config import SHORTEST_RETENTION_DAYS
from governance.events import RetentionApplied, actions
from governance.timestamps import MAX_CLOCK_SKEW, parse_utc, utc_now


def incredible_retention(ts: str, cutoff: str, what: str = "payloads") -> str | None:
    """Why a retention run recorded at `ts` that forgot `what` (payloads, decisions) made before `cutoff` cannot be
    real, or None."""
    try:
        recorded, before = parse_utc(ts), parse_utc(cutoff)
    except ValueError:
        return f"has no valid cut-off ({cutoff!r})"
    if recorded > utc_now() + MAX_CLOCK_SKEW:
        return f"is dated {ts}, in the future"
    if before > recorded - timedelta(days=SHORTEST_RETENTION_DAYS):
        return (
            f"at {ts} claims to expire {what} recorded before {cutoff}, "
            f"closer to the run than the shortest retention ({SHORTEST_RETENTION_DAYS} day)"
        )
    return None


def _run_dates(content: str | bytes) -> tuple[str, str]:
    """A retention run's date and payload cut-off, as its content records them ("" where it does not: a run
    that does not read explains nothing)."""
    try:
        entry = json.loads(content)
    except (ValueError, RecursionError):
        return "", ""
    entry = entry if isinstance(entry, dict) else {}
    facts = entry.get("facts")
    ts, cutoff = entry.get("ts"), facts.get("ledger_payloads_before") if isinstance(facts, dict) else None
    return (ts if isinstance(ts, str) else ""), (cutoff if isinstance(cutoff, str) else "")


def unexplained_expiry(conn: Connection, entries: Table, size: int) -> tuple[int, str] | None:
    """The first entry whose payload is gone although no later retention run's cut-off was past it: a
    payload removed by hand, not by retention (the chain cannot tell, since it hashes only the digest).
    A retention run itself must be credible: recorded no later than now, and its cut-off at least the
    shortest retention period before it; else it is reported as what explains nothing."""
    e = entries.c
    expired = conn.execute(select(e.seq, e.ts).where(e.payload.is_(None), e.seq <= size).order_by(e.seq)).all()
    if not expired:
        return None
    runs = []
    for seq, content in conn.execute(
        select(e.seq, e.content).where(e.action.in_(actions(RetentionApplied)), e.seq <= size).order_by(e.seq)
    ):
        ts, cutoff = _run_dates(content)
        if problem := incredible_retention(ts, cutoff):
            return seq, f"entry {seq}: retention run {problem}"
        runs.append((seq, cutoff))
    for seq, ts in expired:
        if not any(run_seq > seq and ts < cutoff for run_seq, cutoff in runs):
            return seq, (
                f"entry {seq}: its payload is gone, but no later retention run expired payloads "
                f"recorded at {ts}: it was removed outside retention"
            )
    return None
