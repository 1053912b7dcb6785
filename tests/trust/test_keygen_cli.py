"""`govern keygen`: writes the private key owner-only, prints only the public half."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from typer.testing import CliRunner

from governance.trust.keys import load_private_key
from governance.trust.roster import Roster
from programs.cli import app


def keygen(*args: str, home: Path | None = None):
    env = {"HOME": str(home)} if home else None
    return CliRunner(env=env).invoke(app, ["keygen", *args])


def secret_forms(key_file: Path) -> list[str]:
    """Every way the private key could leak into output: PEM, its body, raw bytes in base64 and hex."""
    key = load_private_key(key_file)
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pem = key_file.read_text()
    body = "".join(pem.splitlines()[1:-1])
    return ["PRIVATE KEY", body, base64.b64encode(raw).decode(), raw.hex()]


def test_keygen_writes_the_key_and_prints_a_roster_entry_that_loads(tmp_path):
    key_file = tmp_path / "keys" / "zed.key"
    result = keygen("--principal", "zed", "--out", str(key_file), "--role", "model_risk_approver", "--role", "auditor")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for secret in secret_forms(key_file):
        assert secret not in result.output
    assert f"private key written to {key_file}" in result.output
    entry = result.output.split("reviewed:\n", 1)[1]
    roster_file = tmp_path / "roster.yaml"
    roster_file.write_text("version: 1\nprincipals:\n" + entry)
    principal = Roster.load(roster_file).principal("zed")
    assert principal.roles == {"model_risk_approver", "auditor"}
    assert principal.public_key == load_private_key(key_file).public_key()


def test_keygen_json_output_for_machines(tmp_path):
    key_file = tmp_path / "zed.key"
    result = keygen("--principal", "zed", "--out", str(key_file), "--json", "--role", "auditor")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["key_file"] == str(key_file)
    assert data["roster_entry"] == {"zed": {"roles": ["auditor"], "public_key": data["public_key"]}}
    for secret in secret_forms(key_file):
        assert secret not in result.output


def test_keygen_defaults_to_the_users_config_dir(tmp_path):
    result = keygen("--principal", "zed", home=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".config" / "govern" / "keys" / "zed.key").exists()
    assert "no --role given" in result.output
    assert yaml.safe_load(result.output.split("reviewed:\n", 1)[1])["zed"]["roles"] == []


def test_keygen_refuses_to_overwrite(tmp_path):
    key_file = tmp_path / "zed.key"
    assert keygen("--principal", "zed", "--out", str(key_file)).exit_code == 0
    before = key_file.read_bytes()
    result = keygen("--principal", "zed", "--out", str(key_file))
    assert result.exit_code == 2
    assert "already exists; refusing to overwrite" in result.stderr
    assert key_file.read_bytes() == before


def test_keygen_refuses_a_repository_path(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    result = keygen("--principal", "zed", "--out", str(tmp_path / "repo" / "zed.key"))
    assert result.exit_code == 2
    assert "inside the git work tree" in result.stderr
    assert not (tmp_path / "repo" / "zed.key").exists()


def test_keygen_refuses_bad_names_and_roles_before_writing_anything(tmp_path):
    bad_role = keygen(
        "--principal", "zed", "--out", str(tmp_path / "a.key"), "--role", "auditor", "--role", "superuser"
    )
    assert bad_role.exit_code == 2
    assert "--role: unknown role 'superuser'" in bad_role.stderr
    mixed = keygen("--principal", "zed", "--out", str(tmp_path / "c.key"), "--role", "automation", "--role", "auditor")
    assert mixed.exit_code == 2
    assert "'automation' is for machine principals and cannot be combined with human roles" in mixed.stderr
    bad_name = keygen("--principal", "Zed Smith", "--out", str(tmp_path / "b.key"))
    assert bad_name.exit_code == 2
    assert "--principal 'Zed Smith'" in bad_name.stderr
    assert list(tmp_path.iterdir()) == []
