"""Signed checkpoints: real Ed25519, round trips, forgeries and malformed files."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_support import TEMPLATE_SIZE, event, sqlite_url

from governance.ledger import Checkpoint, CheckpointError, Ledger, sign_checkpoint, verify_checkpoint_signature

pytestmark = pytest.mark.usefixtures("verifying")


@pytest.fixture
def ledger(ledger_file) -> Ledger:
    return Ledger(sqlite_url(ledger_file))


def test_a_checkpoint_signs_the_verified_head_and_round_trips(ledger, signing_key):
    checkpoint = sign_checkpoint(ledger, signing_key, "system")
    assert (checkpoint.size, checkpoint.root, checkpoint.signer) == (TEMPLATE_SIZE, ledger.root(), "system")
    assert checkpoint.issued_at.endswith("Z")
    again = Checkpoint.from_json(checkpoint.to_json())
    assert again == checkpoint
    verify_checkpoint_signature(again, signing_key.public_key())


def test_the_log_proves_it_extends_an_older_checkpoint(ledger, signing_key):
    checkpoint = sign_checkpoint(ledger, signing_key, "system")
    ledger.append_records([event(i) for i in range(TEMPLATE_SIZE, TEMPLATE_SIZE + 300)])
    report = ledger.verify(checkpoint)
    assert report.ok and report.checkpoint_size == TEMPLATE_SIZE and report.size == TEMPLATE_SIZE + 300
    proof = report.consistency
    assert (proof.old_root, proof.new_root) == (checkpoint.root, report.root) and proof.verify()
    assert ledger.verify(sign_checkpoint(ledger, signing_key, "system")).ok


@pytest.mark.parametrize(
    "change", [{"size": 599}, {"root": "00" * 32}, {"signer": "mallory"}, {"issued_at": "2030-01-01T00:00:00.000000Z"}]
)
def test_any_changed_field_breaks_the_signature(ledger, signing_key, change):
    forged = replace(sign_checkpoint(ledger, signing_key, "system"), **change)
    with pytest.raises(CheckpointError, match="does not verify with the given public key"):
        verify_checkpoint_signature(forged, signing_key.public_key())


def test_another_key_does_not_verify(ledger, signing_key):
    checkpoint = sign_checkpoint(ledger, signing_key, "system")
    with pytest.raises(CheckpointError, match="signed by 'system'"):
        verify_checkpoint_signature(checkpoint, Ed25519PrivateKey.generate().public_key())


def test_the_signature_is_bound_to_the_checkpoint_kind(ledger, signing_key):
    checkpoint = sign_checkpoint(ledger, signing_key, "system")
    unbound = {
        "size": checkpoint.size,
        "root": checkpoint.root,
        "issued_at": checkpoint.issued_at,
        "signer": checkpoint.signer,
    }
    assert json.loads(checkpoint.signed_bytes()) == {**unbound, "kind": "governance.ledger.checkpoint/v1"}


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("root"), "field 'root' is missing"),
        (lambda d: d.update(size=-1), "field 'size' is invalid"),
        (lambda d: d.update(size=True), "field 'size' is invalid"),
        (lambda d: d.update(signature="abc"), "field 'signature' is invalid"),
        (lambda d: d.update(issued_at="yesterday"), "field 'issued_at' is invalid"),
        (lambda d: d.update(kind="statement"), "field 'kind' must be"),
        (lambda d: d.update(extra=1), "unknown field"),
    ],
)
def test_malformed_checkpoints_are_refused_by_field(ledger, signing_key, edit, message):
    data = json.loads(sign_checkpoint(ledger, signing_key, "system").to_json())
    edit(data)
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.from_json(json.dumps(data))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        Checkpoint.from_json("{")


def test_a_broken_ledger_gets_no_checkpoint(ledger_file, signing_key):
    with closing(sqlite3.connect(ledger_file)) as db, db:
        db.execute("DELETE FROM ledger_entries WHERE seq = 10")
    with pytest.raises(CheckpointError, match="does not verify at entry 10: entry 10 is missing"):
        sign_checkpoint(Ledger(sqlite_url(ledger_file)), signing_key, "system")


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 512, 599])
def test_verify_proves_extension_of_a_checkpoint_at_any_size(ledger, size):
    checkpoint = Checkpoint(
        size=size, root=ledger.root(size), issued_at="2026-11-22T10:00:00.000000Z", signer="system", signature=""
    )  # Ledger.verify leaves the signature to its caller
    report = ledger.verify(checkpoint)
    assert report.ok and report.consistency.verify() and report.consistency.old_size == size
    rewritten = ledger.verify(replace(checkpoint, root=ledger.root(size + 1)))
    assert not rewritten.ok and f"entries 1..{size} no longer match" in rewritten.problem


def test_checkpoints_at_any_size_are_proved_wherever_the_log_is_cut_for_verifying(tmp_path, signing_key, verifying):
    """Sizes before, at and after the block boundary where two processes split a 1,100-entry log (512), at
    block ends and inside blocks: each checkpoint's root is recomputed and the log proved to extend it."""
    ledger = Ledger(sqlite_url(tmp_path / "ledger.db"))
    checkpoints = []
    for size in (256, 300, 512, 600, 768, 800, 1100):
        ledger.append_records([event(i) for i in range(ledger.size(), size)])
        checkpoints.append(sign_checkpoint(ledger, signing_key, "system"))
    for checkpoint in checkpoints:
        report = ledger.verify(checkpoint)
        assert report.ok and report.checkpoint_size == checkpoint.size and report.size == 1100, report
        rewritten = ledger.verify(replace(checkpoint, root="00" * 32))
        assert not rewritten.ok and rewritten.first_bad_seq == checkpoint.size
        assert "was rewritten" in rewritten.problem
