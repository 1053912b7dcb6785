"""Statements: canonical signed form, the file format, and what a statement may bind."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from governance.digests import canonical_json, sha256_hex
from governance.trust.statements import (
    STATEMENT_TYPE,
    SignedStatement,
    Statement,
    StatementFormatError,
    sign,
    signing_bytes,
    utc_timestamp,
)

NOW = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
EVIDENCE = "ab" * 32
APPROVAL = {"model": "credit_scoring", "version": "credit_scoring-v3", "evidence_digest": EVIDENCE}


def approval(**changes) -> Statement:
    fields = dict(
        action="approve",
        subject=APPROVAL,
        principal="ravi",
        issued_at=NOW,
        expires_at=NOW + timedelta(days=7),
        nonce="n" * 32,
        comment="evidence reviewed",
    )
    return Statement(**(fields | changes))


def test_signed_form_is_rfc8785_of_the_typed_payload_and_verifies(cast):
    signed = sign(approval(), cast.keys["ravi"])
    payload = json.loads(signing_bytes(signed.statement))
    assert payload == {
        "type": STATEMENT_TYPE,
        "action": "approve",
        "subject": APPROVAL,
        "principal": "ravi",
        "issued_at": "2026-11-22T10:00:00.123456Z",
        "expires_at": "2026-11-29T10:00:00.123456Z",
        "nonce": "n" * 32,
        "comment": "evidence reviewed",
    }
    assert signing_bytes(signed.statement) == canonical_json(payload)
    cast.roster.principal("ravi").public_key.verify(base64.b64decode(signed.signature), canonical_json(payload))
    assert signed.digest == sha256_hex(canonical_json({"statement": payload, "signature": signed.signature}))


def test_file_form_round_trips_exactly(cast):
    signed = sign(approval(comment="Zustimmung nach Prüfung"), cast.keys["ravi"])
    text = signed.to_json()
    again = SignedStatement.from_json(text)
    assert again == signed
    assert again.digest == signed.digest
    assert again.to_json() == text


def test_new_statements_get_fresh_nonces_and_utc_times():
    first = Statement.new("disable", {"model": "credit_scoring"}, "bea", valid_for=timedelta(hours=1), now=NOW)
    second = Statement.new("disable", {"model": "credit_scoring"}, "bea", valid_for=timedelta(hours=1), now=NOW)
    assert first.nonce != second.nonce and len(first.nonce) == 32
    assert first.expires_at - first.issued_at == timedelta(hours=1)
    local = datetime(2026, 11, 22, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    assert (
        utc_timestamp(approval(issued_at=local, expires_at=local + timedelta(1)).issued_at)
        == "2026-11-22T10:00:00.000000Z"
    )


@pytest.mark.parametrize(
    "changes, field, problem",
    [
        ({"action": "promote"}, "action", "unknown action 'promote'"),
        ({"subject": {"model": "credit_scoring", "version": "credit_scoring-v3"}}, "subject", "binds exactly"),
        ({"subject": APPROVAL | {"rule": "fairness"}}, "subject", "binds exactly"),
        ({"subject": APPROVAL | {"evidence_digest": "abc"}}, "subject.evidence_digest", "malformed"),
        ({"subject": APPROVAL | {"model": "Credit Scoring"}}, "subject.model", "malformed"),
        (
            {"action": "disable", "subject": {"model": "credit_scoring", "version": "credit_scoring-v3"}},
            "subject",
            "['model']",
        ),
        (
            {
                "action": "waive",
                "subject": {"model": "credit_scoring", "version": "v3", "rule": "fairness.di", "until": "2026-12-31"},
            },
            "subject.until",
            "malformed",
        ),
        ({"principal": "Ravi K"}, "principal", "not a principal name"),
        ({"nonce": "short"}, "nonce", "16-64"),
        ({"expires_at": NOW}, "expires_at", "later than issued_at"),
        ({"issued_at": NOW.replace(tzinfo=None)}, "issued_at", "aware UTC"),
        ({"comment": "call me: ravi.kumar@example.com"}, "comment", "e-mail address"),
        ({"comment": "applicant 123456789 complained"}, "comment", "long number"),
        ({"comment": "x" * 501}, "comment", "at most 500"),
        ({"comment": "ok\x1b[31m"}, "comment", "control characters"),
    ],
)
def test_malformed_statements_are_refused_naming_the_field(changes, field, problem):
    with pytest.raises(StatementFormatError) as caught:
        approval(**changes)
    assert f"statement field {field!r}" in str(caught.value)
    assert problem in str(caught.value)


def test_every_action_binds_its_own_subject():
    until = "2026-12-31T23:59:59.000000Z"
    for action, subject in [
        ("reject", APPROVAL),
        (
            "waive",
            {"model": "credit_scoring", "version": "credit_scoring-v3", "rule": "fairness.di_ratio", "until": until},
        ),
        ("disable", {"model": "credit_scoring"}),
        ("enable", {"model": "credit_scoring"}),
        ("rollback", {"model": "credit_scoring", "version": "credit_scoring-v2"}),
    ]:
        assert approval(action=action, subject=subject).subject == subject


def edited(signed: SignedStatement, edit) -> str:
    document = json.loads(signed.to_json())
    edit(document)
    return json.dumps(document)


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda d: d.update(extra=1), "exactly 'statement' and 'signature'"),
        (lambda d: d["statement"].update(role="auditor"), "expected exactly the fields"),
        (lambda d: d["statement"].update(type="checkpoint/v1"), "field 'statement.type'"),
        (lambda d: d["statement"].update(issued_at="2026-11-22T10:00:00Z"), "field 'statement.issued_at'"),
        (lambda d: d["statement"].update(comment=7), "field 'statement.comment'"),
        (lambda d: d["statement"].update(subject=["credit_scoring"]), "field 'statement.subject'"),
        (lambda d: d["statement"]["subject"].update(evidence_digest="zz"), "'subject.evidence_digest'"),
        (lambda d: d.update(signature=None), "field 'signature'"),
    ],
)
def test_malformed_statement_files_name_the_source_and_field(cast, edit, problem):
    text = edited(sign(approval(), cast.keys["ravi"]), edit)
    with pytest.raises(StatementFormatError) as caught:
        SignedStatement.from_json(text, source="approval.json")
    assert str(caught.value).startswith("approval.json: ")
    assert problem in str(caught.value)


def test_duplicate_keys_and_garbage_are_refused(cast):
    text = sign(approval(), cast.keys["ravi"]).to_json()
    duplicated = text.replace('"action": "approve",', '"action": "approve", "action": "reject",')
    with pytest.raises(StatementFormatError, match="key 'action' appears twice"):
        SignedStatement.from_json(duplicated)
    with pytest.raises(StatementFormatError, match="not valid JSON"):
        SignedStatement.from_json("{")
    with pytest.raises(StatementFormatError, match="larger than"):
        SignedStatement.from_json(" " * 70_000)


def test_only_the_base64_spelling_sign_writes_is_a_signature(cast):
    """Base64 decoding ignores the 4 unused bits before `==`: 16 spellings of one signature decode alike, each
    giving the statement another digest, so a used approval could be replayed under a new one. Only the
    spelling `sign` writes is read or verified."""
    from dataclasses import replace

    from governance.trust.store import StatementRefused, authentic

    signed = sign(approval(), cast.keys["ravi"])
    last = signed.signature[-3]  # the character before "==", whose low 4 bits are unused
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    variant = replace(signed, signature=signed.signature[:-3] + alphabet[alphabet.index(last) ^ 1] + "==")
    assert base64.b64decode(variant.signature) == base64.b64decode(signed.signature)
    assert variant.digest != signed.digest
    with pytest.raises(StatementFormatError, match="field 'signature'"):
        SignedStatement.from_json(variant.to_json())
    with pytest.raises(StatementRefused, match="not base64 of a 64-byte"):
        authentic(variant, cast.roster)
    authentic(signed, cast.roster)


def test_a_document_nested_too_deep_for_the_parser_is_a_format_error():
    with pytest.raises(StatementFormatError, match="not valid JSON: nested deeper than any statement"):
        SignedStatement.from_json("[" * 30000 + "]" * 30000)
