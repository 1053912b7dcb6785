"""One remediation at a time per model, across processes and hosts.

Several sensors can alert on the same window and their runs can start
together; two of them rolling back at once would have the second find the
target already champion. A lease row per model in the governance database
(same database as the control store) serialises them: the holder acts, the
next one finds the situation already handled. A lease expires on its own, so a
crashed holder blocks nobody for long; a lease that expires further ahead than any
holder may take (`LEASE_SECONDS`, plus clock skew) was written by hand to block
the others, and is taken over (logged as a warning).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Column, MetaData, String, Table, delete, insert, select, update

from governance.db import engine_for, write_transaction
from governance.errors import GovernanceError
from governance.migrations import require_current
from governance.timestamps import MAX_CLOCK_SKEW, utc_now, utc_timestamp

LEASE_SECONDS = 120
WAIT_SECONDS = 90
_POLL_SECONDS = 0.2

log = logging.getLogger(__name__)

metadata = MetaData()
leases = Table(
    "monitoring_leases",
    metadata,
    Column("model", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", String(40), nullable=False),
)


class LeaseBusy(GovernanceError):
    """Another remediation of the model held its lease for longer than we wait."""


@contextmanager
def remediation_lease(url: str, model: str, holder: str, wait_seconds: float | None = None) -> Iterator[None]:
    """Hold `model`'s remediation lease for the block (waiting for it up to `wait_seconds`, default
    `WAIT_SECONDS`)."""
    engine = engine_for(url)
    require_current(engine, "governance")
    wait_seconds = WAIT_SECONDS if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait_seconds
    while not _acquire(engine, model, holder):
        if time.monotonic() > deadline:
            raise LeaseBusy(f"another remediation of {model} has held its lease for over {wait_seconds:.0f} s")
        time.sleep(_POLL_SECONDS)
    try:
        yield
    finally:
        with write_transaction(engine, "monitoring_leases") as conn:
            conn.execute(delete(leases).where(leases.c.model == model, leases.c.holder == holder))


def _acquire(engine, model: str, holder: str) -> bool:
    now = utc_now()
    expires = utc_timestamp(now + timedelta(seconds=LEASE_SECONDS))
    longest = utc_timestamp(now + timedelta(seconds=LEASE_SECONDS) + MAX_CLOCK_SKEW)
    with write_transaction(engine, "monitoring_leases") as conn:
        row = conn.execute(select(leases).where(leases.c.model == model)).mappings().first()
        if row is None:
            conn.execute(insert(leases).values(model=model, holder=holder, expires_at=expires))
            return True
        if row["expires_at"] > longest:  # same-format UTC timestamps sort as text (and anything else after them)
            log.warning(
                "took over %s's lease from %s: it expires at %s, further ahead than any holder may take",
                model,
                row["holder"],
                row["expires_at"],
            )
        if row["holder"] == holder or row["expires_at"] <= utc_timestamp(now) or row["expires_at"] > longest:
            conn.execute(update(leases).where(leases.c.model == model).values(holder=holder, expires_at=expires))
            return True
    return False
