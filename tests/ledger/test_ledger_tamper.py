"""Tampering with a real SQLite ledger file through raw sqlite3; verify() must name the entry."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import pytest
from ledger_support import TEMPLATE_SIZE, event, sqlite_url

from governance.digests import canonical_json
from governance.events import RetentionApplied
from governance.ledger import Ledger, LedgerError, VerifyReport, sign_checkpoint
from governance.ledger.merkle import leaf_hash, mth
from governance.ledger.records import GENESIS
from governance.timestamps import utc_timestamp
from tests.helpers import travel

pytestmark = pytest.mark.usefixtures("verifying")

CONTENT_FIELDS = {  # field -> the JSON text just before its value in `content`
    "ts": b'"ts":"',
    "actor": b'"actor":"',
    "action": b'"action":"',
    "subject.model": b'"model":"',
    "subject.version": b'"version":"',
    "digests": b'"evidence":"',
}


def execute(path: Path, statement: str, *params) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(statement, params)


def stored(path: Path, seq: int, column: str) -> bytes:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(f"SELECT CAST({column} AS BLOB) FROM ledger_entries WHERE seq = ?", (seq,)).fetchone()[0]


def one_byte_changed(value: bytes, at: int) -> bytes:
    return value[:at] + (b"x" if value[at : at + 1] != b"x" else b"y") + value[at + 1 :]


def change_byte(path: Path, seq: int, column: str, at: int) -> None:
    changed = one_byte_changed(stored(path, seq, column), at)
    execute(path, f"UPDATE ledger_entries SET {column} = CAST(? AS TEXT) WHERE seq = ?", changed, seq)


def verify(path: Path, checkpoint=None) -> VerifyReport:
    return Ledger(sqlite_url(path)).verify(checkpoint)


def assert_names(report: VerifyReport, seq: int, *words: str) -> None:
    assert not report.ok and report.first_bad_seq == seq, report
    assert f"entry {seq}" in report.problem, report.problem
    for word in words:
        assert word in report.problem, report.problem


def test_the_untouched_copy_verifies(ledger_file):
    report = verify(ledger_file)
    assert report.ok and report.size == TEMPLATE_SIZE and report.first_bad_seq is None


@pytest.mark.parametrize("seq", [1, 300, TEMPLATE_SIZE - 1])
@pytest.mark.parametrize("field", CONTENT_FIELDS)
def test_one_changed_byte_in_any_content_field_names_the_entry(ledger_file, field, seq):
    content = stored(ledger_file, seq, "content")
    change_byte(ledger_file, seq, "content", content.index(CONTENT_FIELDS[field]) + len(CONTENT_FIELDS[field]))
    assert_names(verify(ledger_file), seq, "content (ts, actor, action, subject, digests) was altered")


@pytest.mark.parametrize("column", ["content", "entry_hash"])
def test_a_change_to_the_last_entry_is_named_too(ledger_file, column):
    change_byte(ledger_file, TEMPLATE_SIZE, column, 12)
    assert_names(verify(ledger_file), TEMPLATE_SIZE, "content or entry_hash was altered")


@pytest.mark.parametrize("seq", [1, 300, TEMPLATE_SIZE])
def test_one_changed_byte_in_the_payload_names_the_entry(ledger_file, seq):
    change_byte(ledger_file, seq, "payload", 2)
    assert_names(verify(ledger_file), seq, "payload was altered")


@pytest.mark.parametrize("seq", [1, 300, TEMPLATE_SIZE])
def test_one_changed_byte_in_the_payload_digest_names_the_entry(ledger_file, seq):
    change_byte(ledger_file, seq, "payload_digest", 5)
    assert_names(verify(ledger_file), seq, "payload_digest was altered")


@pytest.mark.parametrize("seq", [1, 300, 512])
def test_one_changed_byte_in_the_entry_hash_names_the_entry(ledger_file, seq):
    change_byte(ledger_file, seq, "entry_hash", 63)
    assert_names(verify(ledger_file), seq, "entry_hash was altered")


def test_a_changed_sequence_number_names_the_entry(ledger_file):
    execute(ledger_file, "UPDATE ledger_entries SET seq = 10300 WHERE seq = 300")
    assert_names(verify(ledger_file), 300, "is missing")


def test_content_that_is_not_json_is_refused_by_the_indexes(ledger_file):
    with pytest.raises(sqlite3.OperationalError, match="malformed JSON"):
        execute(ledger_file, "UPDATE ledger_entries SET content = CAST(X'ff' || content AS TEXT) WHERE seq = 77")


def test_bytes_that_are_not_utf8_are_reported_not_raised(ledger_file):
    content = stored(ledger_file, 77, "content")
    at = content.index(b'"actor":"') + len(b'"actor":"')
    execute(
        ledger_file,
        "UPDATE ledger_entries SET content = CAST(? AS TEXT) WHERE seq = 77",
        content[:at] + b"\xff" + content[at + 1 :],
    )
    assert_names(verify(ledger_file), 77, "content")
    with pytest.raises(LedgerError, match="entry 77: its fields do not hash to its entry hash"):
        Ledger(sqlite_url(ledger_file)).entry(77)


def test_changes_to_an_entry_whose_payload_expired_are_named(ledger_file, monkeypatch):
    ledger = Ledger(sqlite_url(ledger_file))
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    assert ledger.expire_payloads(cutoff) == TEMPLATE_SIZE
    travel(monkeypatch, timedelta(days=1, seconds=2))
    ledger.append(RetentionApplied(actor="system:retention", model="m", ledger_payloads_before=utc_timestamp(cutoff)))
    assert ledger.verify().ok
    change_byte(ledger_file, 300, "payload_digest", 0)
    assert_names(verify(ledger_file), 300, "content (ts, actor, action, subject, digests) or payload_digest")


@pytest.mark.parametrize("expired", [False, True])
def test_a_payload_removed_outside_retention_is_named(ledger_file, expired):
    ledger = Ledger(sqlite_url(ledger_file))
    if expired:  # a retention run before the entry was written explains nothing about it
        cutoff = datetime.now(UTC) - timedelta(days=1)
        ledger.append(
            RetentionApplied(actor="system:retention", model="m", ledger_payloads_before=utc_timestamp(cutoff))
        )
    execute(ledger_file, "UPDATE ledger_entries SET payload = NULL WHERE seq = 300")
    assert_names(verify(ledger_file), 300, "its payload is gone", "removed outside retention")


@pytest.mark.parametrize("seq", [1, 256, 300, 513])  # 256: where two processes cut this log
def test_a_deleted_entry_is_named(ledger_file, seq):
    execute(ledger_file, "DELETE FROM ledger_entries WHERE seq = ?", seq)
    before = f"entry {seq - 1}" if seq > 1 else "the start"
    assert_names(verify(ledger_file), seq, "is missing", f"from {before} to entry {seq + 1}")


def test_two_swapped_entries_are_named(ledger_file):
    with closing(sqlite3.connect(ledger_file)) as db, db:
        rows = {
            seq: rest
            for seq, *rest in db.execute(
                "SELECT seq, content, payload, payload_digest, entry_hash FROM ledger_entries WHERE seq IN (100, 200)"
            )
        }
        for seq, other in ((100, 200), (200, 100)):
            db.execute(
                "UPDATE ledger_entries SET content = ?, payload = ?, payload_digest = ?, entry_hash = ? WHERE seq = ?",
                (*rows[other], seq),
            )
    assert_names(verify(ledger_file), 100, "replaced, moved or swapped")


def test_a_changed_merkle_node_names_the_entries_it_covers(ledger_file):
    execute(ledger_file, "UPDATE ledger_nodes SET hash = 'ff' || substr(hash, 3) WHERE level = 8 AND idx = 1")
    report = verify(ledger_file)
    assert report.first_bad_seq == 257 and "Merkle node over entries 257..512" in report.problem


def test_a_changed_merkle_node_is_named_before_a_later_changed_entry(ledger_file):
    execute(ledger_file, "UPDATE ledger_nodes SET hash = 'ff' || substr(hash, 3) WHERE level = 8 AND idx = 1")
    execute(ledger_file, "UPDATE ledger_entries SET entry_hash = 'ff' || substr(entry_hash, 3) WHERE seq = 550")
    assert verify(ledger_file).first_bad_seq == 257


def test_a_truncated_tail_is_found_by_the_nodes_left_behind(ledger_file):
    execute(ledger_file, "DELETE FROM ledger_entries WHERE seq > 500")
    report = verify(ledger_file)
    assert not report.ok and report.first_bad_seq == 501
    assert "ends at entry 500: entries after 500 were removed" in report.problem


def test_a_clean_truncation_is_found_only_with_a_checkpoint(ledger_file, signing_key):
    checkpoint = sign_checkpoint(Ledger(sqlite_url(ledger_file)), signing_key, "system")
    execute(ledger_file, "DELETE FROM ledger_entries WHERE seq > 500")
    execute(ledger_file, "DELETE FROM ledger_nodes WHERE (idx + 1) << level > 500")
    assert verify(ledger_file).ok  # self-consistent: this is what checkpoints are for
    report = verify(ledger_file, checkpoint)
    assert_names(report, 501, "is missing", f"covers {TEMPLATE_SIZE}", "truncated")


def rewrite_consistently(path: Path, seq: int, field: str, value: str) -> None:
    """An attacker with write access and the documented formula: change one entry, re-hash everything after it."""
    with closing(sqlite3.connect(path)) as db, db:
        rows = db.execute("SELECT seq, content, payload_digest FROM ledger_entries ORDER BY seq").fetchall()
        prev, leaves = GENESIS, []
        for current, content, payload_digest in rows:
            entry = json.loads(content)
            if current == seq:
                entry[field] = value
            record = {"entry": entry, "payload_digest": payload_digest, "prev_hash": prev, "seq": current}
            prev = sha256(canonical_json(record)).hexdigest()
            db.execute(
                "UPDATE ledger_entries SET content = ?, entry_hash = ? WHERE seq = ?",
                (canonical_json(entry).decode(), prev, current),
            )
            leaves.append(leaf_hash(bytes.fromhex(prev)))
        db.execute("DELETE FROM ledger_nodes")
        for level in range(8, len(leaves).bit_length()):
            span = 1 << level
            for idx in range(len(leaves) // span):
                db.execute(
                    "INSERT INTO ledger_nodes VALUES (?, ?, ?)",
                    (level, idx, mth(leaves[idx * span : (idx + 1) * span]).hex()),
                )


def test_a_history_rewritten_consistently_after_a_checkpoint_is_detected(ledger_file, signing_key):
    ledger = Ledger(sqlite_url(ledger_file))
    checkpoint = sign_checkpoint(ledger, signing_key, "system")
    ledger.append_records([event(i) for i in range(TEMPLATE_SIZE, TEMPLATE_SIZE + 20)])
    extended = ledger.verify(checkpoint)
    assert extended.ok and extended.checkpoint_size == TEMPLATE_SIZE and extended.consistency.verify()

    rewrite_consistently(ledger_file, 42, "actor", "mallory")
    assert ledger.entry(42).actor == "mallory"
    assert verify(ledger_file).ok  # the forged chain is self-consistent
    report = verify(ledger_file, checkpoint)
    assert_names(report, TEMPLATE_SIZE, f"entries 1..{TEMPLATE_SIZE} no longer match the checkpoint", "rewritten")


def test_a_history_rewritten_from_the_first_entry_is_detected(ledger_file, signing_key):
    checkpoint = sign_checkpoint(Ledger(sqlite_url(ledger_file)), signing_key, "system")
    rewrite_consistently(ledger_file, 1, "ts", "2020-01-01T00:00:00.000000Z")
    assert verify(ledger_file).ok
    assert_names(verify(ledger_file, checkpoint), TEMPLATE_SIZE, "rewritten")


def test_an_entry_whose_payload_was_edited_is_not_read_as_if_intact(ledger_file):
    """What approvals and the gate read from the ledger (who requested a version, its risk tier) must be what
    the chain recorded, not what a database edit left, even before anyone runs `govern ledger verify`."""
    ledger = Ledger(sqlite_url(ledger_file))
    entry = ledger.entry(300)
    assert entry.payload is not None
    edited = json.dumps({**entry.payload, "forged": True}, separators=(",", ":"), sort_keys=True)
    execute(ledger_file, "UPDATE ledger_entries SET payload = ? WHERE seq = 300", edited)
    with pytest.raises(LedgerError, match="entry 300: its payload does not hash to the digest the chain recorded"):
        ledger.entry(300)
    with pytest.raises(LedgerError, match="entry 300"):
        ledger.entries(since_seq=299)
    assert ledger.entries(since_seq=299, checked=False)[0].payload["forged"] is True  # for the lineage
