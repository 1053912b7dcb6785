"""The ledger on real SQLite files and a real PostgreSQL: entries, chain, proofs, retention, bad input."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from hashlib import sha256

import pytest
import sqlalchemy
from ledger_support import event, sqlite_url

from governance.digests import canonical_json
from governance.events import RetentionApplied
from governance.ledger import Ledger, LedgerError
from governance.ledger.merkle import leaf_hash, mth
from governance.ledger.records import GENESIS, record_bytes
from governance.timestamps import utc_timestamp
from tests.helpers import travel


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path) -> Ledger:
    if request.param == "sqlite":
        return Ledger(sqlite_url(tmp_path / "governance.db"))
    return Ledger(request.getfixturevalue("postgres_url"))


def test_entry_hash_is_sha256_of_the_documented_canonical_record(ledger):
    first = ledger.append_record(
        actor="system:data",
        action="data.snapshot",
        subject={"model": "credit_default"},
        digests={"data": "ab" * 32},
        payload={"rows": 50_000, "label": "é 𝄞"},
    )
    second = ledger.append_record(
        actor="alice", action="approval.granted", subject={"model": "credit_default", "version": "3"}
    )
    assert (first.seq, second.seq) == (1, 2)
    assert (first.prev_hash, second.prev_hash) == (GENESIS, first.entry_hash)
    assert second.payload == {} and first.payload_digest == sha256(canonical_json(first.payload)).hexdigest()
    assert first.ts.endswith("Z") and datetime.fromisoformat(first.ts[:-1]) <= datetime.fromisoformat(second.ts[:-1])
    for entry in (first, second):
        record = {
            "entry": {
                "action": entry.action,
                "actor": entry.actor,
                "digests": entry.digests,
                "subject": entry.subject,
                "ts": entry.ts,
            },
            "payload_digest": entry.payload_digest,
            "prev_hash": entry.prev_hash,
            "seq": entry.seq,
        }
        assert sha256(canonical_json(record)).hexdigest() == entry.entry_hash
        assert ledger.entry(entry.seq) == entry


def test_record_template_is_the_canonical_json_of_the_record():
    content = canonical_json(
        {
            "action": "a.b",
            "actor": 'x"y\\z\u00e9\n',
            "digests": {},
            "subject": {"model": "m"},
            "ts": "2026-11-22T10:00:00.000000Z",
        }
    )
    record = {"entry": json.loads(content), "payload_digest": "cd" * 32, "prev_hash": "ef" * 32, "seq": 123456789}
    assert record_bytes(content, "cd" * 32, "ef" * 32, 123456789) == canonical_json(record)


def test_queries_filter_by_model_version_action_and_position(ledger):
    written = ledger.append_records([event(i) for i in range(40)])
    assert ledger.size() == 40 and [e.seq for e in written] == list(range(1, 41))
    assert ledger.entries() == written
    taiwan = ledger.entries(model="taiwan_default")
    assert taiwan == [e for e in written if e.subject["model"] == "taiwan_default"]
    assert ledger.entries(model="credit_default", version="1", action="gate.decision") == [
        e for e in written if e.subject == {"model": "credit_default", "version": "1"} and e.action == "gate.decision"
    ]
    assert ledger.entries(since_seq=35) == written[35:]
    assert (
        ledger.entries(model="credit_default", limit=3)
        == [e for e in written if e.subject["model"] == "credit_default"][-3:]
    )
    assert ledger.entries(model="nobody") == []
    with pytest.raises(LedgerError, match="no entry 41; the ledger has 40 entries"):
        ledger.entry(41)


def test_a_search_by_text_finds_the_entries_that_hold_it_literally(ledger):
    """`containing` is a literal text, not a pattern: LIKE's wildcards and its escape character match only
    themselves, and what it finds is filtered as the other filters are (and checked as they are)."""
    ids = ["run_1", "runx1", "50%_off", "50%Xoff", "a/b", "a\\b"]
    written = ledger.append_records(
        [{**event(i), "facts": {"decision_id": decision_id}} for i, decision_id in enumerate(ids)]
    )
    for entry, decision_id in zip(written, ids, strict=True):
        quoted = canonical_json(decision_id).decode()
        assert ledger.entries(containing=quoted) == [entry], decision_id
    assert ledger.entries(containing="run", action=written[0].action) == [written[0]]
    assert ledger.entries(containing='"run') == written[:2]
    assert ledger.entries(containing="nowhere") == []


@pytest.mark.parametrize("limit", [None, 1], ids=["all", "latest"])
def test_a_model_s_events_of_some_kinds_are_found_in_the_index_not_by_parsing_its_other_entries(tmp_path, limit):
    """SQLite derives `action` from each entry's content (a virtual column): a query that walked a model's entries
    to test their action would parse every one (a decision seal is 58 kB; at a million sealed decisions, 0.17 s
    a query). The queries the ledger runs for a model's events of some kinds search the (model, action) index."""
    ledger = Ledger(sqlite_url(tmp_path / "governance.db"))
    ledger.append_records([event(i) for i in range(20)])
    ran: list[tuple[str, object]] = []
    sqlalchemy.event.listen(ledger.engine, "before_cursor_execute", lambda *a: ran.append((a[2], a[3])))
    found = ledger.entries(model="credit_default", action=("gate.decision", "approval.granted"), limit=limit)
    assert found and all(e.action in ("gate.decision", "approval.granted") for e in found)
    statement, parameters = next((q, p) for q, p in ran if "FROM ledger_entries" in q and "action IN" in q)
    with ledger.engine.connect() as conn:
        plan = " ".join(str(row) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
    assert "ix_ledger_entries_model_action" in plan, plan


def test_roots_and_proofs_across_stored_node_boundaries(ledger, verifying):
    entries = ledger.append_records([event(i) for i in range(530)])
    for i in range(530, 600):
        entries.append(ledger.append_record(**event(i)))
    leaves = [leaf_hash(bytes.fromhex(e.entry_hash)) for e in entries]
    for size in (0, 1, 255, 256, 257, 511, 512, 513, 600):
        assert ledger.root(size) == mth(leaves[:size]).hex()
        seqs = {1, size // 2, size - 1, size} & set(range(1, size + 1))
        together = ledger.inclusion_proofs(seqs, size)  # read in one go, as a lineage reads its citations
        for seq in seqs:
            proof = ledger.inclusion_proof(seq, size)
            assert (
                proof.verify() and proof.root == ledger.root(size) and proof.entry_hash == entries[seq - 1].entry_hash
            )
            assert together[seq] == proof
        for old in {0, 1, size // 3, 256, size} & set(range(size + 1)):
            proof = ledger.consistency_proof(old, size)
            assert proof.verify() and proof.old_root == mth(leaves[:old]).hex()
    with pytest.raises(LedgerError, match="no tree of size 601"):
        ledger.root(601)
    with pytest.raises(LedgerError, match="entry 0 is not among"):
        ledger.inclusion_proof(0)
    with pytest.raises(LedgerError, match="entry 601 is not among the first 600"):
        ledger.inclusion_proofs([3, 601])
    report = ledger.verify()
    assert report.ok and report.size == 600 and report.root == ledger.root()


def test_retention_drops_payloads_keeps_digests_and_the_chain_verifies(ledger, monkeypatch):
    ledger.append_records([event(i) for i in range(30)])
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    ledger.append_records([event(i) for i in range(30, 40)])
    before = ledger.entries()
    assert ledger.expire_payloads(older_than=datetime.now(UTC) - timedelta(days=1)) == 0
    expired = ledger.expire_payloads(older_than=cutoff)
    after = ledger.entries()
    assert 0 < expired <= 40
    for old, new in zip(before, after):
        dropped = new.ts < cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert new.payload == (None if dropped else old.payload)
        assert (new.payload_digest, new.entry_hash, new.digests) == (old.payload_digest, old.entry_hash, old.digests)
    assert not ledger.verify().ok  # until a retention run records the cut-off, the expiry is unexplained
    travel(monkeypatch, timedelta(days=1, seconds=2))  # a run is at least the shortest retention after its cut-off
    ledger.append(RetentionApplied(actor="system:retention", model="m", ledger_payloads_before=utc_timestamp(cutoff)))
    assert ledger.verify().ok
    assert ledger.verify().ok and ledger.inclusion_proof(3).verify()
    with pytest.raises(LedgerError, match="timezone-aware"):
        ledger.expire_payloads(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"action": "Gate"}, "field 'action' must be dotted lowercase"),
        ({"actor": " "}, "field 'actor'"),
        ({"subject": {"version": "1"}}, "non-empty string 'model'"),
        ({"subject": {"model": "m", "version": 3}}, "'subject.version' must be a string"),
        ({"digests": {"data": "not-a-digest"}}, "field 'digests'"),
        ({"payload": {"x": float("nan")}}, "field 'payload' is not plain JSON"),
        ({"payload": {"blob": "x" * 20_000}}, "keep payloads under"),
        ({"payload": {"name": "a\x00b"}}, "NUL character"),
        ({"approver": "bob"}, "unknown field"),
    ],
)
def test_bad_events_are_refused_by_name_and_append_nothing(tmp_path, change, message):
    ledger = Ledger(sqlite_url(tmp_path / "governance.db"))
    ledger.append_record(**event(0))
    with pytest.raises(LedgerError, match=f"ledger event 2 of 3: .*{message}"):
        ledger.append_records([event(1), {**event(2), **change}, event(3)])
    assert ledger.size() == 1 and ledger.verify().ok


def test_reopening_an_existing_ledger_keeps_it(tmp_path):
    url = sqlite_url(tmp_path / "governance.db")
    Ledger(url).append_records([event(i) for i in range(300)])
    again = Ledger(url)
    again.append_record(**event(300))
    assert again.size() == 301 and again.verify().ok


def test_generated_query_columns_cannot_be_written(ledger_file):
    with closing(sqlite3.connect(ledger_file)) as db, pytest.raises(sqlite3.OperationalError, match="generated"):
        db.execute("UPDATE ledger_entries SET model = 'forged' WHERE seq = 3")


@pytest.mark.parametrize(
    "statement, seq, problem",
    [
        (
            "UPDATE ledger_entries SET payload = replace(payload, '\"i\":4', '\"i\":5') WHERE seq = 5",
            5,
            "payload was altered",
        ),
        ("UPDATE ledger_entries SET content = replace(content, 'alice', 'alicf') WHERE seq = 11", 11, "content"),
        ("DELETE FROM ledger_entries WHERE seq = 7", 7, "entry 7 is missing"),
        # after entry 256, where two processes cut this log
        (
            "UPDATE ledger_entries SET payload = replace(payload, '\"i\":299', '\"i\":298') WHERE seq = 300",
            300,
            "payload was altered",
        ),
        ("DELETE FROM ledger_entries WHERE seq = 400", 400, "entry 400 is missing"),
    ],
)
def test_tampering_is_named_on_both_backends(ledger, statement, seq, problem, verifying):
    ledger.append_records([event(i) for i in range(600)])
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql(statement)
    report = ledger.verify()
    assert not report.ok and report.first_bad_seq == seq and problem in report.problem, report
