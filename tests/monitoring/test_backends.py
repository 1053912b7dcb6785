"""Windows over the decision log and the remediation lease, on the embedded SQLite and on PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert

from governance.db import engine_for
from governance.decisions import DecisionLog, decisions
from governance.monitoring.lease import LeaseBusy, leases, remediation_lease
from governance.monitoring.windows import completed_at, next_window, observe, pending, read_window


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'governance.db'}"
    return request.getfixturevalue("postgres_url")


def log_decisions(log: DecisionLog, count: int) -> None:
    """Two models interleaved; every third of ours answered in the safe state, every fifth labelled."""
    rows = []
    for i in range(count):
        ours, safe = i % 2 == 0, i % 6 == 0
        rows.append(
            {
                "decision_id": f"d-{i}",
                "ts": f"2026-11-22T10:{i // 60 % 60:02d}:{i % 60:02d}.000000Z",
                "model": "credit_scoring" if ours else "other",
                "version": None if safe else 3,
                "input_digest": "0" * 64,
                "features": json.dumps({"x": i}),
                "protected": None,
                "score": None if safe else 0.1,
                "outcome": "refer" if safe else "approve",
                "reasons": "[]",
                "kill_switch": safe,
                "label": 1 if i % 5 == 0 else None,
            }
        )
    with log.engine.begin() as conn:
        conn.execute(insert(decisions), rows)


def test_windows_are_read_exactly_and_lean(url):
    log = DecisionLog(url)
    log_decisions(log, 1300)  # 650 of credit_scoring's
    window = next_window(log, "credit_scoring", 0, 500)
    assert (window.first_seq, window.last_seq, len(window.entries)) == (1, 999, 500)
    assert window.version == 3 and len(window.judged()) == 500 - 167 and window.key == "1-999"
    assert next_window(log, "credit_scoring", window.last_seq, 500) is None
    assert pending(log, "credit_scoring", window.last_seq, 500) == 150
    assert read_window(log, "credit_scoring", 1, 999).entries == window.entries
    observed = observe(log, window, window.labelled())
    assert [o.seq for o in observed] == [e.seq for e in window.labelled()] and observed[0].label == 1
    assert json.loads(observed[0].features)["x"] == observed[0].seq - 1
    assert completed_at(log, "credit_scoring", window.key) == "2026-11-22T10:16:38.000000Z"


def test_one_remediation_at_a_time_per_model_and_an_abandoned_lease_expires(url):
    with remediation_lease(url, "credit_scoring", "run-a"):
        with pytest.raises(LeaseBusy, match="another remediation of credit_scoring"):
            with remediation_lease(url, "credit_scoring", "run-b", wait_seconds=0.3):
                pass
        with remediation_lease(url, "other", "run-b", wait_seconds=0.3):  # other models are not held up
            pass
    with remediation_lease(url, "credit_scoring", "run-b", wait_seconds=0.3):
        pass
    engine = engine_for(url)
    with engine.begin() as conn:  # a holder that crashed long ago
        conn.execute(
            insert(leases).values(model="credit_scoring", holder="crashed", expires_at="2026-01-01T00:00:00.000000Z")
        )
    with remediation_lease(url, "credit_scoring", "run-c", wait_seconds=0.3):
        with engine.begin() as conn:
            holder = conn.execute(leases.select()).mappings().one()["holder"]
        assert holder == "run-c"
    with engine.begin() as conn:
        assert conn.execute(leases.select()).first() is None  # released
