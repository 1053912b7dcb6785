"""Private key files: owner-only from the first byte, never overwritten, never in a repository."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from governance.trust.curve import is_prime_order_point
from governance.trust.demo import DEMO_CAST, demo_key_path, demo_principals
from governance.trust.keys import (
    KeyFileError,
    generate_key_pair,
    load_private_key,
    parse_public_key_line,
    public_key_line,
    signing_key_path,
    write_private_key,
)
from governance.trust.roster import Roster

# Spelled in two parts so that scanning the repository for key material finds no false positive here.
PEM_LABEL = b"PRIVATE " + b"KEY"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


@pytest.fixture
def open_umask():
    """The most permissive umask: a file mode of 0600 must then come from our code."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_written_key_is_owner_only_loads_back_and_leaves_no_temporary(tmp_path, open_umask):
    private, public = generate_key_pair()
    path = write_private_key(tmp_path / "new" / "dir" / "ravi.key", private)
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert load_private_key(path).public_key() == public
    assert path.read_bytes().startswith(b"-----BEGIN " + PEM_LABEL + b"-----")
    assert sorted(p.name for p in path.parent.iterdir()) == ["ravi.key"]


def test_an_existing_key_file_is_never_overwritten(tmp_path):
    path = write_private_key(tmp_path / "ravi.key", generate_key_pair()[0])
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="ravi.key: already exists; refusing to overwrite"):
        write_private_key(path, generate_key_pair()[0])
    assert path.read_bytes() == before


def test_a_dangling_symlink_is_not_followed_or_replaced(tmp_path):
    (tmp_path / "ravi.key").symlink_to(tmp_path / "elsewhere.key")
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite"):
        write_private_key(tmp_path / "ravi.key", generate_key_pair()[0])
    assert not (tmp_path / "elsewhere.key").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ravi.key"]


def test_a_path_inside_a_git_work_tree_is_refused(tmp_path):
    repo = git_repo(tmp_path / "repo")
    for target in (repo / "ravi.key", repo / "not" / "yet" / "there" / "ravi.key"):
        with pytest.raises(KeyFileError, match=f"inside the git work tree {repo}"):
            write_private_key(target, generate_key_pair()[0])
        assert not target.exists()
    assert not (repo / "not").exists()


def test_git_ignored_state_dir_is_allowed_only_when_asked_and_only_if_ignored(tmp_path):
    repo = git_repo(tmp_path / "repo")
    (repo / ".gitignore").write_text(".govern/\n")
    ignored, tracked = repo / ".govern" / "keys" / "dana.key", repo / "keys" / "dana.key"
    with pytest.raises(KeyFileError, match="inside the git work tree"):
        write_private_key(ignored, generate_key_pair()[0])
    write_private_key(ignored, generate_key_pair()[0], allow_git_ignored=True)
    assert ignored.exists()
    with pytest.raises(KeyFileError, match="inside the git work tree"):
        write_private_key(tracked, generate_key_pair()[0], allow_git_ignored=True)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_key_readable_by_others_is_refused(tmp_path, mode):
    path = write_private_key(tmp_path / "ravi.key", generate_key_pair()[0])
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=rf"ravi.key: .*group or others \(mode {mode:04o}\); run 'chmod 600"):
        load_private_key(path)


def test_not_a_key_file_is_refused_without_quoting_it(tmp_path):
    path = tmp_path / "ravi.key"
    label = PEM_LABEL.decode()
    path.write_text(f"-----BEGIN {label}-----\nsecretsecret\n-----END {label}-----\n")
    path.chmod(0o600)
    with pytest.raises(KeyFileError) as caught:
        load_private_key(path)
    assert "not an unencrypted PEM" in str(caught.value)
    assert "secretsecret" not in str(caught.value)
    with pytest.raises(KeyFileError, match="private key file not found"):
        load_private_key(tmp_path / "missing.key")


def test_a_symlinked_key_file_is_refused(tmp_path):
    real = write_private_key(tmp_path / "real.key", generate_key_pair()[0])
    (tmp_path / "link.key").symlink_to(real)
    with pytest.raises(KeyFileError, match="link.key: cannot open"):
        load_private_key(tmp_path / "link.key")


def test_public_key_line_round_trips():
    _, public = generate_key_pair()
    line = public_key_line(public)
    assert line.startswith("ed25519:") and len(line) == len("ed25519:") + 44
    assert parse_public_key_line(line) == public


def test_the_small_order_key_check_is_needed():
    """OpenSSL accepts R = identity, S = 0 as a signature on anything under the identity key."""
    identity = bytes([1]) + bytes(31)
    forged = identity + bytes(32)
    Ed25519PublicKey.from_public_bytes(identity).verify(forged, b"approve credit_scoring-v9")  # no InvalidSignature
    assert not is_prime_order_point(identity)


@pytest.mark.parametrize(
    "raw_hex",
    [
        "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
        "0000000000000000000000000000000000000000000000000000000000000080",  # order 4, other sign
        "0100000000000000000000000000000000000000000000000000000000000080",  # identity with the sign bit: not canonical
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p - 1: order 2
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p: not canonical
    ],
)
def test_small_order_and_non_canonical_points_are_refused(raw_hex):
    assert not is_prime_order_point(bytes.fromhex(raw_hex))


def test_a_key_with_a_small_order_component_is_refused():
    from governance.trust import curve

    raw = generate_key_pair()[1].public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert is_prime_order_point(raw)
    order_8 = curve._decode(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"))
    x, y, z, _ = curve._add(curve._decode(raw), order_8)
    inverse = pow(z, -1, curve._P)
    x, y = x * inverse % curve._P, y * inverse % curve._P
    assert not is_prime_order_point((y | (x & 1) << 255).to_bytes(32, "little"))


def test_demo_principals_are_created_once_and_kept(settings, open_umask):
    path = demo_principals(settings)
    roster = Roster.load(path)
    assert path == settings.home / "roster.yaml"
    assert set(roster.principals) == set(DEMO_CAST)
    assert mode_of(settings.keys_dir) == 0o700
    for name in DEMO_CAST:
        key_file = demo_key_path(settings, name)
        assert mode_of(key_file) == 0o600
        assert load_private_key(key_file).public_key() == roster.principal(name).public_key
    assert "PRIVATE" not in path.read_text()
    again = Roster.load(demo_principals(settings))
    assert again.digest == roster.digest


def test_signing_key_path_prefers_the_state_dir_and_names_both_places(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    demo_principals(settings)
    assert signing_key_path(settings.keys_dir, "ravi") == settings.keys_dir / "ravi.key"
    own = write_private_key(tmp_path / "home" / ".config" / "govern" / "keys" / "zed.key", generate_key_pair()[0])
    assert signing_key_path(settings.keys_dir, "zed") == own
    with pytest.raises(KeyFileError) as caught:
        signing_key_path(settings.keys_dir, "nobody")
    assert str(settings.keys_dir / "nobody.key") in str(caught.value)
    assert str(tmp_path / "home" / ".config" / "govern" / "keys" / "nobody.key") in str(caught.value)


def test_demo_keys_go_into_a_git_ignored_state_dir_but_never_a_tracked_one(tmp_path):
    from governance.settings import Settings

    repo = git_repo(tmp_path / "repo")
    (repo / ".gitignore").write_text(".govern/\n")
    ignored = Settings(home=repo / ".govern", config_path=repo / "governance.yaml")
    assert Roster.load(demo_principals(ignored)).principals.keys() == DEMO_CAST.keys()
    tracked = Settings(home=repo / "state", config_path=repo / "governance.yaml")
    with pytest.raises(KeyFileError, match="not git-ignored"):
        demo_principals(tracked)
    assert not (repo / "state").exists()
