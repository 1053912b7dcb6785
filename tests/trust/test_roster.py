"""Roster loading: a valid roster loads; each kind of mistake names file, principal and field."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from governance.trust.keys import generate_key_pair, public_key_line
from governance.trust.roster import Roster, RosterError, UnknownPrincipal

REPO = Path(__file__).resolve().parents[2]
IDENTITY_POINT = "ed25519:" + base64.b64encode(bytes([1]) + bytes(31)).decode()


def key_line() -> str:
    return public_key_line(generate_key_pair()[1])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_demo_roster_loads_with_every_role(cast):
    roster = cast.roster
    assert roster.version == 1
    assert roster.principal("ravi").roles == {"model_risk_approver"}
    assert roster.principal("system").roles == {"automation"}
    assert {role for p in roster.principals.values() for role in p.roles} == {
        "data_scientist",
        "model_risk_approver",
        "ml_platform",
        "business_owner",
        "compliance_manager",
        "auditor",
        "automation",
    }


def test_unknown_principal_is_named(cast):
    with pytest.raises(UnknownPrincipal, match=r"roster\.yaml: no principal 'mallory' in roster version 1"):
        cast.roster.principal("mallory")


def test_digest_ignores_comments_and_layout_but_not_content(tmp_path):
    ravi, dana = key_line(), key_line()
    compact = write(
        tmp_path,
        f"version: 2\nprincipals:\n  ravi: {{roles: [model_risk_approver], public_key: '{ravi}'}}\n"
        f"  dana: {{roles: [data_scientist], public_key: '{dana}'}}\n",
    )
    first = Roster.load(compact).digest
    commented = write(
        tmp_path,
        f"# reviewed 2026-11\nprincipals:\n  dana:\n    public_key: {dana}\n    roles:\n"
        f"      - data_scientist\n  ravi:\n    roles: [model_risk_approver]  # approver\n"
        f"    public_key: {ravi}\nversion: 2\n",
    )
    assert Roster.load(commented).digest == first
    bumped = write(tmp_path, commented.read_text().replace("version: 2", "version: 3"))
    assert Roster.load(bumped).digest != first


def test_write_then_load_round_trips(tmp_path, cast):
    path = Roster.write(
        tmp_path / "copy.yaml", version=7, principals=cast.roster.principals.values(), header="a copy\nfor a test"
    ).path
    copy = Roster.load(path)
    assert path.read_text().startswith("# a copy\n# for a test\n")
    assert {n: p.document() for n, p in copy.principals.items()} == {
        n: p.document() for n, p in cast.roster.principals.items()
    }
    assert copy.version == 7


def test_versioned_roster_loads_and_holds_no_private_keys():
    path = REPO / "policies" / "roster.yaml"
    roster = Roster.load(path)
    assert roster.version >= 1
    assert "PRIVATE KEY" not in path.read_text()


BAD_ROSTERS = [
    # (case, principals body with GOOD standing for a fresh public key, what the message must name)
    ("unknown role", "ravi: {roles: [approver], public_key: GOOD}", ["'ravi'", "'roles'", "unknown role 'approver'"]),
    ("no roles", "ravi: {roles: [], public_key: GOOD}", ["'ravi'", "'roles'", "non-empty list"]),
    ("role twice", "ravi: {roles: [auditor, auditor], public_key: GOOD}", ["'ravi'", "'roles'", "twice"]),
    (
        "automation with a human role",
        "bot: {roles: [automation, ml_platform], public_key: GOOD}",
        ["'bot'", "'roles'", "machine principals"],
    ),
    ("missing roles", "ravi: {public_key: GOOD}", ["'ravi'", "'roles'", "missing"]),
    ("missing public_key", "ravi: {roles: [auditor]}", ["'ravi'", "'public_key'", "missing"]),
    ("key without prefix", "ravi: {roles: [auditor], public_key: 'AAAA'}", ["'ravi'", "'public_key'", "ed25519:"]),
    (
        "key not base64",
        "ravi: {roles: [auditor], public_key: 'ed25519:not*base64'}",
        ["'ravi'", "'public_key'", "not valid base64"],
    ),
    (
        "key too short",
        "ravi: {roles: [auditor], public_key: 'ed25519:AAAA'}",
        ["'ravi'", "'public_key'", "decodes to 3"],
    ),
    (
        "small-order key",
        f"ravi: {{roles: [auditor], public_key: '{IDENTITY_POINT}'}}",
        ["'ravi'", "'public_key'", "prime order"],
    ),
    ("key is a number", "ravi: {roles: [auditor], public_key: 42}", ["'ravi'", "'public_key'"]),
    (
        "unknown field",
        "ravi: {roles: [auditor], public_key: GOOD, email: r@example.com}",
        ["'ravi'", "unknown field(s): email"],
    ),
    ("bad name", "Ravi Kumar: {roles: [auditor], public_key: GOOD}", ["'Ravi Kumar'", "name must be"]),
    (
        "long display name",
        f"ravi: {{roles: [auditor], public_key: GOOD, display_name: '{'x' * 81}'}}",
        ["'ravi'", "'display_name'"],
    ),
    ("entry not a mapping", "ravi: [auditor]", ["'ravi'", "expected a mapping"]),
]


@pytest.mark.parametrize("case, body, expected", BAD_ROSTERS, ids=[c[0] for c in BAD_ROSTERS])
def test_bad_principal_entries_name_file_principal_and_field(tmp_path, case, body, expected):
    path = write(tmp_path, "version: 1\nprincipals:\n  " + body.replace("GOOD", f"'{key_line()}'") + "\n")
    with pytest.raises(RosterError) as caught:
        Roster.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for part in expected:
        assert part in message


def test_a_principal_defined_twice_is_refused_with_both_lines(tmp_path):
    path = write(
        tmp_path,
        f"version: 1\nprincipals:\n  ravi: {{roles: [auditor], public_key: '{key_line()}'}}\n"
        f"  ravi: {{roles: [model_risk_approver], public_key: '{key_line()}'}}\n",
    )
    with pytest.raises(RosterError, match=r"roster\.yaml: principal 'ravi': defined twice \(lines 3 and 4\)"):
        Roster.load(path)


def test_a_field_defined_twice_is_refused(tmp_path):
    path = write(
        tmp_path,
        f"version: 1\nprincipals:\n  ravi:\n    roles: [auditor]\n    roles: [model_risk_approver]\n"
        f"    public_key: '{key_line()}'\n",
    )
    with pytest.raises(RosterError, match=r"field 'principals\.ravi\.roles': defined twice \(lines 4 and 5\)"):
        Roster.load(path)


def test_two_principals_sharing_a_key_are_refused(tmp_path):
    shared = key_line()
    path = write(
        tmp_path,
        f"version: 1\nprincipals:\n  ravi: {{roles: [model_risk_approver], public_key: '{shared}'}}\n"
        f"  dana: {{roles: [data_scientist], public_key: '{shared}'}}\n",
    )
    with pytest.raises(RosterError, match=r"principal 'dana': field 'public_key': same key as principal 'ravi'"):
        Roster.load(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("principals: {}\n", "field 'version'"),
        ("version: 0\nprincipals: {}\n", "field 'version'"),
        ("version: true\nprincipals: {}\n", "field 'version'"),
        ("version: 1\n", "field 'principals' is missing"),
        ("version: 1\nprincipals: [ravi]\n", "field 'principals'"),
        ("version: 1\nprincipals: {}\nowner: me\n", "unknown top-level field(s): owner"),
        ("- just a list\n", "expected a mapping"),
        ("version: 1\nprincipals: {ravi: [\n", "not valid YAML"),
    ],
)
def test_bad_top_level_names_file_and_field(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(RosterError) as caught:
        Roster.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(RosterError, match="nowhere.yaml: roster file not found"):
        Roster.load(tmp_path / "nowhere.yaml")
