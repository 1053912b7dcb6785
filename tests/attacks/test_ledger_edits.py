"""Ledger edits of every kind by an insider with the database's credentials: a byte changed in any column of any
entry, an entry deleted, inserted, moved or swapped, a Merkle node changed, the tail truncated, the history
re-hashed consistently after a signed checkpoint, a payload removed or explained away by a forged retention run.

Each edit is made with the database's own SQL, outside the project's code, on a real ledger on SQLite and on
PostgreSQL: a 600-entry ledger (two complete 256-entry blocks, a level-9 node and a partial block), verified in one
process and in two as the CLI does for a large log, and the lineage world's own ledger, where `govern ledger
verify`, `lineage` and `trace` must exit non-zero and name the entry. What the chain cannot see alone (a clean
truncation, a consistent rewrite) a signed checkpoint does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.pool import NullPool

from governance import events
from governance.events import RetentionApplied
from governance.ledger import Checkpoint, Ledger, LedgerError, VerifyReport, sign_checkpoint
from governance.timestamps import utc_now, utc_timestamp
from tests.attacks.support import answers, rewrite_consistently, sql
from tests.conftest import new_postgres_database
from tests.helpers import console_verification, travel
from tests.ledger.ledger_support import TEMPLATE_SIZE, event, sqlite_url
from tests.lineage.conftest import govern
from tests.lineage.world import MODEL, V1, V2

CONTENT_FIELDS = {  # field -> the JSON text just before its value in `content`
    "ts": b'"ts":"',
    "actor": b'"actor":"',
    "action": b'"action":"',
    "subject.model": b'"model":"',
    "subject.version": b'"version":"',
    "digests": b'"evidence":"',
}


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """The 600-entry ledger on SQLite, built once through both append paths: batches and single appends across
    block boundaries."""
    path = tmp_path_factory.mktemp("ledger-template") / "governance.db"
    _fill(Ledger(sqlite_url(path)))
    return path


@pytest.fixture(scope="session")
def postgresql_template() -> Iterator[str]:
    """The same ledger in a PostgreSQL database that each test's database is created from (CREATE DATABASE ...
    TEMPLATE), all dropped at the end of the session."""
    from governance.db import engine_for

    with new_postgres_database("govern_ledger_edits", schemas=True) as url:
        _fill(Ledger(url))
        engine_for(url).dispose()  # a template has no sessions
        yield url.rsplit("/", 1)[1]


def _fill(ledger: Ledger) -> None:
    ledger.append_records([event(i) for i in range(250)])
    for i in range(250, 260):
        ledger.append_record(**event(i))
    ledger.append_records([event(i) for i in range(260, TEMPLATE_SIZE)])


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def ledger_url(backend, verifying, request, settings) -> Iterator[str]:
    """A private copy of the 600-entry ledger on each backend (at the `settings` fixture's ledger location on
    SQLite), verified in one process and in two."""
    if backend == "sqlite":
        import sqlite3
        from contextlib import closing

        settings.home.mkdir(parents=True, exist_ok=True)
        path = settings.home / "governance.db"
        template = request.getfixturevalue("sqlite_template")
        with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as target:
            source.backup(target)
        yield sqlite_url(path)
        return
    template = request.getfixturevalue("postgresql_template")
    with new_postgres_database(f"{template}_copy", template=template) as url:
        yield url


def execute(url: str, statement: str, **params) -> None:
    """An edit with the database's own SQL, outside the project's code."""
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(statement), params)
    engine.dispose()


def stored(url: str, seq: int, column: str) -> bytes:
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        value = conn.execute(sqlalchemy.text(f"SELECT {column} FROM ledger_entries WHERE seq = :seq"), {"seq": seq})
        text = value.scalar_one()
    engine.dispose()
    return text.encode()


def one_byte_changed(value: bytes, at: int) -> bytes:
    return value[:at] + (b"x" if value[at : at + 1] != b"x" else b"y") + value[at + 1 :]


def change_byte(url: str, seq: int, column: str, at: int) -> None:
    changed = one_byte_changed(stored(url, seq, column), at)
    execute(url, f"UPDATE ledger_entries SET {column} = :value WHERE seq = :seq", value=changed.decode(), seq=seq)


def verify(url: str, checkpoint=None) -> VerifyReport:
    return Ledger(url).verify(checkpoint)


def assert_names(report: VerifyReport, seq: int, *words: str) -> None:
    assert not report.ok and report.first_bad_seq == seq, report
    assert f"entry {seq}" in report.problem, report.problem
    for word in words:
        assert word in report.problem, report.problem


# --- a 600-entry ledger ------------------------------------------------------------------------------------------


def test_the_untouched_copy_verifies(ledger_url):
    report = verify(ledger_url)
    assert report.ok and report.size == TEMPLATE_SIZE and report.first_bad_seq is None


@pytest.mark.parametrize("seq", [1, 300, TEMPLATE_SIZE - 1])
@pytest.mark.parametrize("field", CONTENT_FIELDS)
def test_one_changed_byte_in_any_content_field_names_the_entry(ledger_url, field, seq):
    content = stored(ledger_url, seq, "content")
    change_byte(ledger_url, seq, "content", content.index(CONTENT_FIELDS[field]) + len(CONTENT_FIELDS[field]))
    assert_names(verify(ledger_url), seq, "content (ts, actor, action, subject, digests) was altered")


@pytest.mark.parametrize("column", ["content", "entry_hash"])
def test_a_change_to_the_last_entry_is_named_too(ledger_url, column):
    change_byte(ledger_url, TEMPLATE_SIZE, column, 12)
    assert_names(verify(ledger_url), TEMPLATE_SIZE, "content or entry_hash was altered")


@pytest.mark.parametrize("seq", [1, 300, TEMPLATE_SIZE])
def test_one_changed_byte_in_the_payload_names_the_entry(ledger_url, seq):
    change_byte(ledger_url, seq, "payload", 2)
    assert_names(verify(ledger_url), seq, "payload was altered")


@pytest.mark.parametrize("seq", [1, 300, TEMPLATE_SIZE])
def test_one_changed_byte_in_the_payload_digest_names_the_entry(ledger_url, seq):
    change_byte(ledger_url, seq, "payload_digest", 5)
    assert_names(verify(ledger_url), seq, "payload_digest was altered")


@pytest.mark.parametrize("seq", [1, 300, 512])
def test_one_changed_byte_in_the_entry_hash_names_the_entry(ledger_url, seq):
    change_byte(ledger_url, seq, "entry_hash", 63)
    assert_names(verify(ledger_url), seq, "entry_hash was altered")


def test_a_changed_sequence_number_names_the_entry(ledger_url):
    execute(ledger_url, "UPDATE ledger_entries SET seq = 10300 WHERE seq = 300")
    assert_names(verify(ledger_url), 300, "is missing")


def test_content_that_is_not_json_is_refused_by_the_indexes(ledger_url):
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="malformed JSON|invalid input syntax for type json"):
        execute(ledger_url, "UPDATE ledger_entries SET content = 'x' || content WHERE seq = 77")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # PostgreSQL's text holds only valid UTF-8
def test_bytes_that_are_not_utf8_are_reported_not_raised(ledger_url):
    import sqlite3
    from contextlib import closing

    path = ledger_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as db, db:
        content = db.execute("SELECT CAST(content AS BLOB) FROM ledger_entries WHERE seq = 77").fetchone()[0]
        at = content.index(b'"actor":"') + len(b'"actor":"')
        db.execute(
            "UPDATE ledger_entries SET content = CAST(? AS TEXT) WHERE seq = 77",
            (content[:at] + b"\xff" + content[at + 1 :],),
        )
    assert_names(verify(ledger_url), 77, "content")
    with pytest.raises(LedgerError, match="entry 77: its fields do not hash to its entry hash"):
        Ledger(ledger_url).entry(77)


def test_changes_to_an_entry_whose_payload_expired_are_named(ledger_url, monkeypatch):
    ledger = Ledger(ledger_url)
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    assert ledger.expire_payloads(cutoff) == TEMPLATE_SIZE
    travel(monkeypatch, timedelta(days=1, seconds=2))
    ledger.append(RetentionApplied(actor="system:retention", model="m", ledger_payloads_before=utc_timestamp(cutoff)))
    assert ledger.verify().ok
    change_byte(ledger_url, 300, "payload_digest", 0)
    assert_names(verify(ledger_url), 300, "content (ts, actor, action, subject, digests) or payload_digest")


@pytest.mark.parametrize("expired", [False, True])
def test_a_payload_removed_outside_retention_is_named(ledger_url, expired):
    ledger = Ledger(ledger_url)
    if expired:  # a retention run before the entry was written explains nothing about it
        cutoff = datetime.now(UTC) - timedelta(days=1)
        ledger.append(
            RetentionApplied(actor="system:retention", model="m", ledger_payloads_before=utc_timestamp(cutoff))
        )
    execute(ledger_url, "UPDATE ledger_entries SET payload = NULL WHERE seq = 300")
    assert_names(verify(ledger_url), 300, "its payload is gone", "removed outside retention")


@pytest.mark.parametrize("seq", [1, 256, 300, 513])  # 256: where two processes cut this log
def test_a_deleted_entry_is_named(ledger_url, seq):
    execute(ledger_url, "DELETE FROM ledger_entries WHERE seq = :seq", seq=seq)
    before = f"entry {seq - 1}" if seq > 1 else "the start"
    assert_names(verify(ledger_url), seq, "is missing", f"from {before} to entry {seq + 1}")


def test_two_swapped_entries_are_named(ledger_url):
    columns = ("content", "payload", "payload_digest", "entry_hash")
    engine = sqlalchemy.create_engine(ledger_url, poolclass=NullPool)
    with engine.begin() as conn:
        query = sqlalchemy.text(f"SELECT seq, {', '.join(columns)} FROM ledger_entries WHERE seq IN (100, 200)")
        rows = {seq: rest for seq, *rest in conn.execute(query)}
        for seq, other in ((100, 200), (200, 100)):
            conn.execute(
                sqlalchemy.text(
                    "UPDATE ledger_entries SET content = :c, payload = :p, payload_digest = :d, entry_hash = :h "
                    "WHERE seq = :seq"
                ),
                dict(zip(("c", "p", "d", "h"), rows[other], strict=True), seq=seq),
            )
    engine.dispose()
    assert_names(verify(ledger_url), 100, "replaced, moved or swapped")


def test_a_changed_merkle_node_names_the_entries_it_covers(ledger_url):
    execute(ledger_url, "UPDATE ledger_nodes SET hash = 'ff' || substr(hash, 3) WHERE level = 8 AND idx = 1")
    report = verify(ledger_url)
    assert report.first_bad_seq == 257 and "Merkle node over entries 257..512" in report.problem


def test_a_changed_merkle_node_is_named_before_a_later_changed_entry(ledger_url):
    execute(ledger_url, "UPDATE ledger_nodes SET hash = 'ff' || substr(hash, 3) WHERE level = 8 AND idx = 1")
    execute(ledger_url, "UPDATE ledger_entries SET entry_hash = 'ff' || substr(entry_hash, 3) WHERE seq = 550")
    assert verify(ledger_url).first_bad_seq == 257


def test_a_truncated_tail_is_found_by_the_nodes_left_behind(ledger_url):
    execute(ledger_url, "DELETE FROM ledger_entries WHERE seq > 500")
    report = verify(ledger_url)
    assert not report.ok and report.first_bad_seq == 501
    assert "ends at entry 500: entries after 500 were removed" in report.problem


def test_a_clean_truncation_is_found_only_with_a_checkpoint(ledger_url, signing_key):
    checkpoint = sign_checkpoint(Ledger(ledger_url), signing_key, "system")
    execute(ledger_url, "DELETE FROM ledger_entries WHERE seq > 500")
    execute(ledger_url, "DELETE FROM ledger_nodes WHERE (idx + 1) << level > 500")
    assert verify(ledger_url).ok  # self-consistent: this is what checkpoints are for
    report = verify(ledger_url, checkpoint)
    assert_names(report, 501, "is missing", f"covers {TEMPLATE_SIZE}", "truncated")


def test_a_history_rewritten_consistently_after_a_checkpoint_is_detected(ledger_url, signing_key):
    ledger = Ledger(ledger_url)
    checkpoint = sign_checkpoint(ledger, signing_key, "system")
    ledger.append_records([event(i) for i in range(TEMPLATE_SIZE, TEMPLATE_SIZE + 20)])
    extended = ledger.verify(checkpoint)
    assert extended.ok and extended.checkpoint_size == TEMPLATE_SIZE and extended.consistency.verify()

    rewrite_consistently(ledger_url, 42, "actor", "mallory")
    assert ledger.entry(42).actor == "mallory"
    assert verify(ledger_url).ok  # the forged chain is self-consistent
    report = verify(ledger_url, checkpoint)
    assert_names(report, TEMPLATE_SIZE, f"entries 1..{TEMPLATE_SIZE} no longer match the checkpoint", "rewritten")


def test_a_history_rewritten_from_the_first_entry_is_detected(ledger_url, signing_key):
    checkpoint = sign_checkpoint(Ledger(ledger_url), signing_key, "system")
    rewrite_consistently(ledger_url, 1, "ts", "2020-01-01T00:00:00.000000Z")
    assert verify(ledger_url).ok
    assert_names(verify(ledger_url, checkpoint), TEMPLATE_SIZE, "rewritten")


def test_an_entry_whose_payload_was_edited_is_not_read_as_if_intact(ledger_url):
    """What approvals and the gate read from the ledger (who requested a version, its risk tier) must be what
    the chain recorded, not what a database edit left, even before anyone runs `govern ledger verify`."""
    ledger = Ledger(ledger_url)
    entry = ledger.entry(300)
    assert entry.payload is not None
    edited = json.dumps({**entry.payload, "forged": True}, separators=(",", ":"), sort_keys=True)
    execute(ledger_url, "UPDATE ledger_entries SET payload = :edited WHERE seq = 300", edited=edited)
    with pytest.raises(LedgerError, match="entry 300: its payload does not hash to the digest the chain recorded"):
        ledger.entry(300)
    with pytest.raises(LedgerError, match="entry 300"):
        ledger.entries(since_seq=299)
    assert ledger.entries(since_seq=299, checked=False)[0].payload["forged"] is True  # for the lineage


# --- the lineage world's own ledger -------------------------------------------------------------------------------


def _checkpoint(settings, tmp_path: Path) -> Path:
    """The signed checkpoint operations take on a schedule (`govern ledger checkpoint`)."""
    out = tmp_path / "checkpoint.json"
    signed = govern(settings, "ledger", "checkpoint", "--out", out)
    assert signed.exit_code == 0, signed.output
    return out


def _content(settings, seq: int) -> dict:
    engine = sqlalchemy.create_engine(settings.ledger_url, poolclass=NullPool)
    with engine.connect() as conn:
        text = conn.execute(sqlalchemy.text("SELECT content FROM ledger_entries WHERE seq = :s"), {"s": seq}).scalar()
    engine.dispose()
    return json.loads(text)


@pytest.mark.slow
def test_a_rewritten_ledger_entry_is_a_finding_of_lineage_and_trace(any_world, attacked):
    """v1's card entry now names dana as its publisher (the hashed content rewritten, the hash left)."""
    from governance.lineage.chain import version_lineage
    from governance.release.services import Services
    from tests.lineage.test_lineage import _citations

    ledger = Services(attacked).ledger
    card = ledger.entries(model=MODEL, version=V1, action=events.CardPublished.action)[-1]
    forged = {"action": card.action, "actor": "dana", "digests": card.digests, "facts": card.facts}
    sql(
        attacked,
        "UPDATE ledger_entries SET content = :c WHERE seq = :seq",
        c=json.dumps({**forged, "subject": card.subject, "ts": card.ts}, separators=(",", ":"), sort_keys=True),
        seq=card.seq,
    )
    doc = version_lineage(Services(attacked), MODEL, V1).document
    assert f"ledger entry {card.seq}: its fields do not hash to its entry_hash" in doc["findings"]
    assert _citations(doc)[card.seq]["verified"] is False
    result = govern(attacked, "lineage", MODEL, "1")
    assert result.exit_code == 1 and f"[#{card.seq} DOES NOT VERIFY]" in result.output, result.output
    traced = govern(attacked, "trace", any_world.decisions["after_rollback"][0]["decision_id"])  # made by v1
    assert traced.exit_code == 1 and f"[#{card.seq} DOES NOT VERIFY]" in traced.output, traced.output
    verified = govern(attacked, "ledger", "verify")
    assert verified.exit_code == 1 and f"entry {card.seq}" in verified.output


@pytest.mark.slow
def test_a_tampered_ledger_is_named_on_every_console_page_that_reads_it(attacked):
    from html import unescape

    from governance.console import links

    granted = Ledger.for_settings(attacked).latest(events.ApprovalGranted, model=MODEL, version=V2)
    _relabel(attacked, granted.seq, "rhea", "mallory")
    console = _api(attacked)

    def body(response) -> str:
        text = unescape(response.text)
        assert "Traceback" not in text, text[:2000]
        return text

    verify = console_verification(console)
    assert verify.status_code == 409 and f"#{granted.seq}</a>: " in body(verify)
    entry = console.get(links.ledger_entry_url(granted.seq, "/console"))
    assert entry.status_code == 409 and "FAILS: entry" in body(entry)
    browse = console.get(links.ledger_url("/console", model=MODEL, version=V2))
    assert browse.status_code == 409 and "ALTERED" in body(browse)
    lineage = console.get(f"/console/models/{MODEL}/versions/{V2}")
    assert lineage.status_code == 409 and f"entry {granted.seq}: its fields do not hash" in body(lineage)
    assert console.get("/console/").status_code == 200


def _delete(settings, seq: int) -> None:
    """An entry in the middle deleted: the rollback's completion."""
    sql(settings, "DELETE FROM ledger_entries WHERE seq = :seq", seq=seq)


def _insert(settings, seq: int) -> None:
    """A forged entry appended after the head with a made-up hash (the chain's formula not followed)."""
    sql(
        settings,
        "INSERT INTO ledger_entries (seq, content, payload, payload_digest, entry_hash) "
        "SELECT :new, content, payload, payload_digest, :hash FROM ledger_entries WHERE seq = :seq",
        new=Ledger.for_settings(settings).size() + 1,
        hash="f" * 64,
        seq=seq,
    )


def _swap(settings, seq: int) -> None:
    """The rollback's completion swapped with the entry before it (reordered history)."""
    engine = sqlalchemy.create_engine(settings.ledger_url, poolclass=NullPool)
    columns = "content, payload, payload_digest, entry_hash"
    with engine.begin() as conn:
        rows = {
            row[0]: row[1:]
            for row in conn.execute(
                sqlalchemy.text(f"SELECT seq, {columns} FROM ledger_entries WHERE seq IN (:a, :b)"),
                {"a": seq - 1, "b": seq},
            )
        }
        for here, there in ((seq - 1, seq), (seq, seq - 1)):
            conn.execute(
                sqlalchemy.text(
                    "UPDATE ledger_entries SET content = :c, payload = :p, payload_digest = :d, entry_hash = :h "
                    "WHERE seq = :s"
                ),
                dict(zip(("c", "p", "d", "h"), rows[there], strict=True), s=here),
            )
    engine.dispose()


def _update(settings, seq: int) -> None:
    """The rollback's completion now names another version (the hashed content edited, the hash left)."""
    sql(
        settings,
        "UPDATE ledger_entries SET content = replace(content, :old, :new) WHERE seq = :seq",
        old=f"{MODEL}-v1",
        new=f"{MODEL}-v2",
        seq=seq,
    )


EDITS = {"update": _update, "insert": _insert, "reorder": _swap}  # delete: below


@pytest.mark.slow
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_entry_of_a_real_ledger_is_named_by_ledger_verify(attacked, edit):
    """Each kind of edit, made to the entry that records paul's rollback completing (v2 -> v1): `ledger verify`
    names the entry, and serving never answers from v2, which a person rolled back."""
    from governance.release.services import Services

    completed = Services(attacked).ledger.latest(events.RollbackCompleted, model=MODEL)
    EDITS[edit](attacked, completed.seq)
    named = {"insert": Ledger.for_settings(attacked).size(), "reorder": completed.seq - 1}.get(edit, completed.seq)
    verify = govern(attacked, "ledger", "verify")
    assert verify.exit_code == 1 and f"ledger FAILED at entry {named}" in verify.output, verify.output
    assert {a["version"] for a in answers(attacked)} <= {1, None}
    assert Services(attacked).registry.champion(MODEL) == 1


@pytest.mark.slow
def test_a_deleted_rollback_entry_does_not_bring_back_the_rolled_back_version(attacked):
    from governance.release.services import Services
    from tests.attacks.support import POLL_SECONDS, ask, incidents, scoring_api
    from tests.helpers import wait_until

    completed = Services(attacked).ledger.latest(events.RollbackCompleted, model=MODEL)
    with scoring_api(attacked) as client:
        wait_until(lambda: client.get(f"/models/{MODEL}").json()["served_version"] == 1, "v1 to be served")
        _delete(attacked, completed.seq)
        time.sleep(5 * POLL_SECONDS)
        served = {a["version"] for a in ask(client, attacked)}
    verify = govern(attacked, "ledger", "verify")
    assert verify.exit_code == 1 and f"ledger FAILED at entry {completed.seq}" in verify.output, verify.output
    assert incidents(attacked, "the verified champion is credit_scoring-v2")
    assert served <= {1, None}


def test_serving_never_switches_to_the_champion_a_deleted_completion_gives(attacked):
    """Poll by poll: v1 served; the rollback's completion deleted, which makes v2 the champion the ledger gives.
    At the first poll serving keeps v1 (a governed move writes its row a moment before its ledger entry); at the
    second it answers in the safe state. v2, which a person rolled back, is never served."""
    from governance.release.services import Services
    from governance.serving.champion import ChampionFollower

    services = Services(attacked)
    follower = ChampionFollower(attacked, services.governed_model(MODEL), services.registry, services.control)
    assert follower.refresh().served.version == 1
    _delete(attacked, services.ledger.latest(events.RollbackCompleted, model=MODEL).seq)
    assert follower.refresh().served.version == 1
    held = follower.refresh()
    assert held.served is None and "the ledger records no such move" in held.safe_reason, held


@pytest.mark.slow
def test_a_real_ledger_truncated_after_a_checkpoint_is_detected(attacked, tmp_path):
    """Everything from paul's rollback on removed cleanly (Merkle nodes too): the ledger alone is self-consistent,
    the signed checkpoint taken before says what it lost."""
    from governance.release.services import Services

    checkpoint = _checkpoint(attacked, tmp_path)
    started = Services(attacked).ledger.latest(events.RollbackStarted, model=MODEL)
    sql(attacked, "DELETE FROM ledger_entries WHERE seq >= :seq", seq=started.seq)
    sql(attacked, "DELETE FROM ledger_nodes WHERE (idx + 1) << level >= :seq", seq=started.seq)
    assert govern(attacked, "ledger", "verify").exit_code == 0  # self-consistent: what checkpoints are for
    verify = govern(attacked, "ledger", "verify", "--checkpoint", checkpoint)
    assert verify.exit_code == 1 and f"entry {started.seq} is missing" in verify.output, verify.output


@pytest.mark.slow
def test_a_real_ledger_truncated_to_before_a_rollback_does_not_bring_back_the_rolled_back_version(attacked):
    """Without a checkpoint at hand, as serving is: everything from paul's rollback on deleted cleanly."""
    from governance.release.services import Services

    started = Services(attacked).ledger.latest(events.RollbackStarted, model=MODEL)
    sql(attacked, "DELETE FROM ledger_entries WHERE seq >= :seq", seq=started.seq)
    sql(attacked, "DELETE FROM ledger_nodes WHERE (idx + 1) << level >= :seq", seq=started.seq)
    assert {a["version"] for a in answers(attacked)} <= {1, None}
    status = govern(attacked, "status")
    assert status.exit_code == 1, status.output


@pytest.mark.slow
def test_a_real_ledger_rehashed_consistently_after_a_checkpoint_is_detected(attacked, tmp_path):
    """rhea's approval of v2 rewritten to name mallory, and every entry after it re-hashed by the documented
    formula, Merkle nodes rebuilt: the chain verifies alone; the checkpoint does not."""
    from governance.release.services import Services

    checkpoint = _checkpoint(attacked, tmp_path)
    granted = Services(attacked).ledger.latest(events.ApprovalGranted, model=MODEL, version=V2)
    size = Checkpoint.from_json(checkpoint.read_text()).size  # the ledger records the checkpoint after it
    rewrite_consistently(attacked.ledger_url, granted.seq, "actor", "mallory")
    assert _content(attacked, granted.seq)["actor"] == "mallory"
    assert govern(attacked, "ledger", "verify").exit_code == 0  # the forged chain is self-consistent
    verify = govern(attacked, "ledger", "verify", "--checkpoint", checkpoint)
    assert verify.exit_code == 1 and f"entries 1..{size} no longer match the checkpoint" in verify.output


@pytest.mark.slow
def test_an_approval_entry_rehashed_to_name_another_approver_is_a_finding_of_lineage(attacked):
    from governance.release.services import Services

    granted = Services(attacked).ledger.latest(events.ApprovalGranted, model=MODEL, version=V2)
    rewrite_consistently(attacked.ledger_url, granted.seq, "actor", "mallory")
    assert govern(attacked, "ledger", "verify").exit_code == 0  # self-consistent: only lineage can tell
    lineage = govern(attacked, "lineage", MODEL, "2")
    assert lineage.exit_code == 1 and "mallory" in lineage.output, lineage.output


@pytest.mark.slow
def test_a_payload_removed_outside_retention_fails_verification(attacked):
    seq = Ledger.for_settings(attacked).size() - 1
    sql(attacked, "UPDATE ledger_entries SET payload = NULL WHERE seq = :seq", seq=seq)
    verify = govern(attacked, "ledger", "verify")
    assert verify.exit_code != 0 and "removed outside retention" in verify.output


@pytest.mark.slow
@pytest.mark.parametrize(
    "dated, cutoff, problem",
    [
        (None, timedelta(seconds=1), "closer to the run than the shortest retention"),
        (timedelta(days=400), timedelta(days=399), "in the future"),
    ],
    ids=["cut-off at the run", "run dated in the future"],
)
def test_a_forged_retention_run_does_not_explain_fresh_payloads_away(attacked, monkeypatch, dated, cutoff, problem):
    ledger = Ledger.for_settings(attacked)
    ledger.expire_payloads(utc_now() + timedelta(seconds=1))
    if dated:
        travel(monkeypatch, dated)
    forged = utc_timestamp(utc_now() + cutoff - (dated or timedelta()))
    ledger.append(events.RetentionApplied(actor="system:retention", model=MODEL, ledger_payloads_before=forged))
    monkeypatch.undo()
    verify = govern(attacked, "ledger", "verify")
    assert verify.exit_code != 0 and problem in verify.output, verify.output


@pytest.mark.slow
def test_the_same_expiry_by_a_retention_run_a_day_later_verifies(attacked, monkeypatch):
    """The control: retention's own expiry, recorded by a credible run, is not tampering."""
    cutoff = utc_now() + timedelta(seconds=1)
    ledger = Ledger.for_settings(attacked)
    ledger.expire_payloads(cutoff)
    travel(monkeypatch, timedelta(days=1, seconds=2))
    ledger.append(
        events.RetentionApplied(actor="system:retention", model=MODEL, ledger_payloads_before=utc_timestamp(cutoff))
    )
    assert govern(attacked, "ledger", "verify").exit_code == 0


def _hide_from_queries(settings, seq: int) -> None:
    """Redefine the derived `action` column so that entry `seq` no longer reads as what it records: its hashed
    bytes stay as they were, so the chain and the Merkle tree still verify (PostgreSQL: the column made an
    ordinary one and updated; SQLite: the table rebuilt with another formula for it)."""
    if settings.ledger_url.startswith("postgresql"):
        sql(settings, "ALTER TABLE ledger_entries ALTER COLUMN action DROP EXPRESSION")
        sql(settings, "UPDATE ledger_entries SET action = 'noted' WHERE seq = :seq", seq=seq)
        return
    engine = sqlalchemy.create_engine(settings.ledger_url, poolclass=NullPool)
    with engine.begin() as conn:
        [ddl] = conn.execute(sqlalchemy.text("SELECT sql FROM sqlite_master WHERE name = 'ledger_entries'")).scalars()
        indexes = conn.execute(
            sqlalchemy.text("SELECT sql FROM sqlite_master WHERE tbl_name = 'ledger_entries' AND type = 'index'")
        ).scalars()
        indexes = [i for i in indexes if i]
        conn.execute(sqlalchemy.text("ALTER TABLE ledger_entries RENAME TO ledger_entries_old"))
        conn.execute(
            sqlalchemy.text(
                ddl.replace(
                    "AS (json_extract(content, '$.action'))",
                    f"AS (CASE WHEN seq = {seq} THEN 'noted' ELSE json_extract(content, '$.action') END)",
                )
            )
        )
        conn.execute(
            sqlalchemy.text(
                "INSERT INTO ledger_entries (seq, content, payload, payload_digest, entry_hash) "
                "SELECT seq, content, payload, payload_digest, entry_hash FROM ledger_entries_old"
            )
        )
        conn.execute(sqlalchemy.text("DROP TABLE ledger_entries_old"))
        for index in indexes:
            conn.execute(sqlalchemy.text(index))
    engine.dispose()


@pytest.mark.slow
def test_a_redefined_query_column_hiding_the_rollback_is_refused_and_named(attacked):
    """An insider hides paul's completed rollback from every query by model, version or action (the hashed entry
    untouched), deletes its deployments row and moves the alias back to v2: the ledger is not read at all, so
    serving answers in the safe state, and status and `ledger verify` name the redefined table."""
    from governance.release.services import Services

    services = Services(attacked)
    completed = services.ledger.latest(events.RollbackCompleted, model=MODEL)
    _hide_from_queries(attacked, completed.seq)
    sql(attacked, "DELETE FROM deployments WHERE kind = 'rollback'")
    services.registry.client.set_registered_model_alias(MODEL, "champion", "2")

    assert {a["version"] for a in answers(attacked)} == {None}  # refer, the safe state, never v2
    verify = govern(attacked, "ledger", "verify")
    named = ("no longer derived from the hashed content", "derived columns were redefined")
    assert verify.exit_code == 1 and any(n in verify.output for n in named), verify.output
    status = govern(attacked, "status")
    assert status.exit_code != 0, status.output


def test_an_entry_dated_before_one_appended_earlier_is_misdated(ledger_url):
    """The ledger dates each entry as it appends it: an entry dated (by a rewrite) more than the clock skew
    before one appended earlier is named, and entries appended after it are not, read at once or as they come."""
    rewrite_consistently(ledger_url, 300, "ts", "2000-01-01T00:00:00.000000Z")
    ledger = Ledger(ledger_url)
    assert ledger.misdated() == {300}
    ledger.append_record(**event(TEMPLATE_SIZE))
    assert ledger.misdated() == {300} and Ledger(ledger_url).misdated() == {300}


@pytest.mark.parametrize("seq", [300, TEMPLATE_SIZE])
def test_dates_rewritten_after_a_reader_read_them_are_refused_by_it(ledger_url, seq):
    """A long-lived reader (serving) reads each date once; a ledger writer who then dates an entry it read back
    and re-hashes the chain from there (the last entry alone, or one before it and all after) is caught by it:
    it refuses to go on (serving then holds the safe state), and a fresh reader names the entry."""
    ledger = Ledger(ledger_url)
    assert ledger.misdated() == set()
    rewrite_consistently(ledger_url, seq, "ts", "2000-01-01T00:00:00.000000Z")
    with pytest.raises(LedgerError, match=f"ledger entry {TEMPLATE_SIZE}, read before, was removed or replaced"):
        ledger.misdated()
    assert Ledger(ledger_url).misdated() == {seq}


@pytest.mark.parametrize("seq", [300, TEMPLATE_SIZE + 30])
def test_a_history_a_reader_kept_reads_as_a_fresh_one_and_refuses_a_rewrite(ledger_url, seq):
    """Serving's follower keeps the events it read and reads only the entries appended since (`Ledger.history`):
    it returns what a fresh read does as entries come, from any starting entry, and a ledger writer who re-hashes
    the chain from an entry it read (the last one alone, or one before it and all after) is caught by it, as by
    `misdated`; a fresh reader reads the rewritten history."""
    kept = Ledger(ledger_url)

    def read(ledger: Ledger, since: int = 0, how: str = "history") -> list[int]:
        found = getattr(ledger, how)(events.GateDecided, model="credit_default", since_seq=since, typed=False)
        return [e.seq for e in found]

    assert read(kept, 400) == read(Ledger(ledger_url), 400, "events")
    assert read(kept) == read(Ledger(ledger_url), 0, "events")  # asked for older ones than it kept
    kept.append_records([event(i) for i in range(TEMPLATE_SIZE, TEMPLATE_SIZE + 30)])
    assert read(kept, 400) == read(Ledger(ledger_url), 400, "events") and max(read(kept)) > TEMPLATE_SIZE
    rewrite_consistently(ledger_url, seq, "ts", "2000-01-01T00:00:00.000000Z")
    with pytest.raises(LedgerError, match=f"ledger entry {TEMPLATE_SIZE + 30}, read before, was removed or replaced"):
        read(kept)
    assert read(Ledger(ledger_url)) == read(Ledger(ledger_url), 0, "events")


def test_an_entry_dated_in_the_future_is_misdated_and_dates_nothing_after_it(ledger_url):
    """One well-chained entry dated 2099 must not make every later entry look dated by hand."""
    rewrite_consistently(ledger_url, 300, "ts", "2099-01-01T00:00:00.000000Z")
    ledger = Ledger(ledger_url)
    ledger.append_record(**event(TEMPLATE_SIZE))
    assert ledger.misdated() == {300}


def test_a_retention_run_whose_facts_do_not_read_is_named_not_a_crash(ledger_url):
    """A ledger writer nulls a payload and appends a retention run whose `facts` is null (re-hashed in place):
    verify names the run, no traceback."""
    ledger = Ledger(ledger_url)
    run = ledger.append(
        RetentionApplied(actor="system:retention", model="m", ledger_payloads_before="2000-01-01T00:00:00.000000Z")
    )
    execute(ledger_url, "UPDATE ledger_entries SET payload = NULL WHERE seq = 5")
    rewrite_consistently(ledger_url, run.seq, "facts", None)
    report = Ledger(ledger_url).verify()
    assert not report.ok and report.first_bad_seq == run.seq and "has no valid cut-off" in report.problem


def test_a_tampered_rollback_leaves_no_all_clear_on_the_inventory_or_the_model_page(attacked):
    """The rollback's entry re-signed by nobody (its actor edited): nothing of the model's state can be vouched
    for, so the pages say unknown, never "0" open incidents or "nothing waits", and answer 409."""
    rolled = Ledger.for_settings(attacked).latest(events.RollbackCompleted, model=MODEL)
    _relabel(attacked, rolled.seq, "paul", "ravi")
    console = _api(attacked)
    for page in ("/console/", f"/console/models/{MODEL}"):
        shown = console.get(page)
        assert shown.status_code == 409 and "cannot be verified" in shown.text, (page, shown.text[-2000:])
        assert shown.text.count("unknown: the signed record cannot be verified") == 2, page
        assert "Traceback" not in shown.text


def test_status_on_a_tampered_rollback_names_it_as_an_incident_and_exits_1(attacked):
    """`govern status` on the same tampering still prints every model, the unverifiable one with an incident
    that names the altered entry, and exits 1 (as for any incident); before, it printed nothing and exited 2."""
    rolled = Ledger.for_settings(attacked).latest(events.RollbackCompleted, model=MODEL)
    _relabel(attacked, rolled.seq, "paul", "ravi")
    result = govern(attacked, "status", "--json")
    assert result.exit_code == 1, (result.output, result.exception)
    (model,) = json.loads(result.output)
    assert model["model"] == MODEL and model["champion"] is None
    assert any(f"entry {rolled.seq}" in incident for incident in model["incidents"]), model["incidents"]
    text = govern(attacked, "status")
    assert text.exit_code == 1 and "INCIDENT" in text.output, text.output


def _relabel(settings, seq: int, old: str, new: str) -> None:
    """A database writer's edit of one entry's content: `old` replaced by `new`, the hashes left as they were."""
    sql(
        settings,
        "UPDATE ledger_entries SET content = replace(content, :old, :new) WHERE seq = :s",
        old=old,
        new=new,
        s=seq,
    )


def _api(settings):
    """The scoring API with its console, as a browser reaches it (with a token in production)."""
    from fastapi.testclient import TestClient

    from governance.config import load_config
    from governance.serving.app import create_app
    from tests.serving.conftest import bearer

    client = TestClient(create_app(settings, load_config(settings.config_path)), raise_server_exceptions=False)
    client.headers.update(bearer(settings) if settings.production else {})
    return client
