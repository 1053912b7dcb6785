"""A decision log written before `safe_state_reason` existed is upgraded in place, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Column, MetaData, Table, insert, inspect

from governance.db import engine_for
from governance.decisions import DecisionLog, decisions

OLD_ROW = dict(
    decision_id="before-upgrade",
    ts="2026-11-01T10:00:00.000000Z",
    model="credit_scoring",
    version=None,
    input_digest="a" * 64,
    features=None,
    protected=None,
    score=None,
    outcome="refer",
    reasons="[]",
    kill_switch=True,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    return (
        f"sqlite:///{tmp_path / 'decisions.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )


def test_an_old_decision_log_gains_the_safe_state_reason_and_keeps_its_rows(url):
    old = MetaData()
    Table(
        decisions.name,
        old,
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in decisions.columns
            if c.name != "safe_state_reason"
        ),
    )
    engine = engine_for(url)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(old.tables[decisions.name]), OLD_ROW)

    log = DecisionLog(url)
    assert "safe_state_reason" in {c["name"] for c in inspect(log.engine).get_columns(decisions.name)}
    kept = log.get("before-upgrade")
    assert (kept.outcome, kept.kill_switch, kept.safe_state_reason) == ("refer", True, None)
    log.record(
        decision_id="after-upgrade",
        ts="2026-11-02T10:00:00.000000Z",
        model="credit_scoring",
        version=None,
        input_digest="b" * 64,
        features=None,
        protected=None,
        score=None,
        outcome="refer",
        reasons=[],
        kill_switch=False,
        safe_state_reason="no champion has been deployed",
    )
    assert DecisionLog(url).get("after-upgrade").safe_state_reason == "no champion has been deployed"  # idempotent
    assert log.count() == 2


def test_two_processes_upgrading_the_same_log_at_once_both_succeed(url, monkeypatch):
    """The second to run ALTER TABLE finds the column already added by the first: not an error."""
    from governance import decisions as module

    DecisionLog(url)  # already upgraded: the column exists
    real = module._column_names
    views = iter([real(engine_for(url)) - {"safe_state_reason"}])  # what the slower process saw before the ALTER
    monkeypatch.setattr(module, "_column_names", lambda engine: next(views, None) or real(engine))
    assert DecisionLog(url).count() == 0


def test_on_postgresql_the_upgrade_gives_up_rather_than_hold_up_the_logs_writers(postgres_url, monkeypatch):
    """ALTER TABLE waits for every open transaction on the table and queues all writes behind it: bounded."""
    from sqlalchemy.exc import OperationalError

    from governance import decisions as module

    monkeypatch.setattr(module, "UPGRADE_LOCK_TIMEOUT", "200ms")
    old = MetaData()
    table = Table(
        decisions.name,
        old,
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in decisions.columns
            if c.name != "safe_state_reason"
        ),
    )
    engine = engine_for(postgres_url)
    old.create_all(engine)
    failures = []

    def upgrade():
        try:
            DecisionLog(postgres_url)
        except OperationalError as exc:
            failures.append(exc)

    with engine.connect() as reader, reader.begin():
        reader.execute(table.select())  # an old worker's transaction, still open
        opening = threading.Thread(target=upgrade)
        opening.start()
        opening.join(timeout=5)
        waited = opening.is_alive()
    opening.join()
    assert not waited, "opening the log waited for as long as the reader's transaction lasted"
    assert len(failures) == 1 and "lock timeout" in str(failures[0])
    assert DecisionLog(postgres_url).count() == 0  # once the reader is done, the upgrade goes through
