"""`govern init` for a config outside the repository, and `govern roster add` growing its roster."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from governance.errors import GovernanceError
from governance.policy.bundle import PolicyBundle
from governance.settings import Settings
from governance.trust.roster import Roster
from programs.cli import app
from tests.helpers import REPO, SMALL_CONFIG


def govern(home, config, *args):
    return CliRunner().invoke(app, ["--home", str(home), "--config", str(config), *args])


def test_init_makes_a_state_dir_with_policies_for_a_config_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("GOVERN_POLICIES", raising=False)
    monkeypatch.delenv("GOVERN_ROSTER", raising=False)
    config = tmp_path / "elsewhere" / "governance.yaml"
    config.parent.mkdir()
    shutil.copy(SMALL_CONFIG, config)
    home = tmp_path / "state"
    assert "govern init" in govern(home, config, "status").output  # before: no state, and what to do

    result = govern(home, config, "init", "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.output)
    assert done["policies"] == str(home / "policies") and done["policies_copied"] and done["principals"] == []
    assert PolicyBundle.load(home / "policies").digest == PolicyBundle.load(REPO / "policies").digest
    assert (home / "governance.db").is_file()
    assert govern(home, config, "status").exit_code == 0
    again = govern(home, config, "init", "--json")  # idempotent, and the copy is now the bundle in force
    assert again.exit_code == 0 and not json.loads(again.output)["policies_copied"]

    key = govern(home, config, "keygen", "--principal", "ravi", "--out", str(tmp_path / "ravi.key"), "--json")
    public = tmp_path / "ravi.pub"
    public.write_text(json.loads(key.output)["public_key"] + "\n")
    added = govern(home, config, "roster", "add", "ravi", "--role", "model_risk_approver", "--public-key", str(public))
    assert added.exit_code == 0, added.output
    roster = Roster.load(home / "policies" / "roster.yaml")
    assert roster.version == 2 and set(roster.principals["ravi"].roles) == {"model_risk_approver"}
    assert (home / "policies" / "roster.yaml").read_text().startswith("# The production roster")

    refused = {
        "this is a private key": ["ravi2", "--role", "auditor", "--public-key", str(tmp_path / "ravi.key")],
        "--role:": ["rhea", "--role", "approver", "--public-key", str(public)],
        "principal 'ravi' is already in roster version 2": ["ravi", "--role", "auditor", "--public-key", str(public)],
    }
    for why, args in refused.items():
        result = govern(home, config, "roster", "add", *args)
        assert result.exit_code != 0 and why in result.output, (why, result.output)
    assert Roster.load(home / "policies" / "roster.yaml").version == 2


def test_init_creates_nothing_from_a_bad_config(tmp_path):
    config = tmp_path / "governance.yaml"
    config.write_text(SMALL_CONFIG.read_text().replace("risk_tier: high", "risk_teir: high"))
    result = govern(tmp_path / "state", config, "init")
    assert result.exit_code != 0 and "did you mean 'risk_tier'?" in str(result.exception) + result.output
    assert not (tmp_path / "state").exists()


def test_production_never_takes_its_policies_from_the_state_dir(tmp_path, monkeypatch, postgres_url):
    """The state dir's policy copy serves the embedded default only; production points GOVERN_POLICIES at the
    versioned policies, and `govern init` says so instead of copying rules its writers could rewrite."""
    monkeypatch.delenv("GOVERN_POLICIES", raising=False)
    config = tmp_path / "elsewhere" / "governance.yaml"
    config.parent.mkdir()
    shutil.copy(SMALL_CONFIG, config)
    home = tmp_path / "state"
    assert govern(home, config, "init").exit_code == 0  # embedded default: a copy in the state dir
    assert (home / "policies").is_dir()

    monkeypatch.setenv("GOVERN_DATABASE_URL", postgres_url)
    settings = Settings.from_env(config_path=config, home=home)
    assert settings.production and settings.policies_dir == config.parent / "policies"
    result = govern(home, config, "init")
    assert result.exit_code != 0 and "set GOVERN_POLICIES" in result.output, result.output


def test_production_without_dagster_s_database_writes_nothing(tmp_path, monkeypatch, postgres_url):
    """A process given the governance database but not Dagster's would have rewritten dagster.yaml to SQLite in
    the state dir every process shares: `govern status` then saw no runs and no versions."""
    home = tmp_path / "state"
    monkeypatch.setenv("GOVERN_DATABASE_URL", postgres_url)
    monkeypatch.setenv("GOVERN_POLICIES", str(REPO / "policies"))
    monkeypatch.delenv("GOVERN_DAGSTER_DATABASE_URL", raising=False)
    result = govern(home, SMALL_CONFIG, "init")
    assert result.exit_code != 0 and "GOVERN_DAGSTER_DATABASE_URL is not" in result.output, result.output
    assert not (home / "dagster" / "dagster.yaml").exists()


def test_the_state_dir_remembers_its_config_and_refuses_another(tmp_path, monkeypatch):
    """A command run from another directory governs the models the state dir was created for; another config
    is refused by name (and by the code location too), until `govern init --config` points it there."""
    mine = tmp_path / "mine" / "governance.yaml"
    mine.parent.mkdir()
    shutil.copy(SMALL_CONFIG, mine)
    other = tmp_path / "other" / "governance.yaml"
    other.parent.mkdir()
    other.write_text(SMALL_CONFIG.read_text().replace("credit_scoring:", "other_model:", 1))
    home = tmp_path / "state"
    assert govern(home, mine, "init").exit_code == 0
    monkeypatch.chdir(REPO)  # where a governance.yaml of other models sits
    monkeypatch.delenv("GOVERN_CONFIG", raising=False)

    remembered = CliRunner().invoke(app, ["--home", str(home), "status", "--json"])
    assert remembered.exit_code == 0, remembered.output
    assert [m["model"] for m in json.loads(remembered.output)] == ["credit_scoring"]
    assert Settings.from_env(home=home).config_path == mine

    size = (home / "governance.db").stat().st_size
    for command in (["status"], ["ledger", "verify"], ["serve", "--help"]):
        refused = govern(home, other, *command)
        if command[-1] == "--help":
            assert refused.exit_code == 0
            continue
        assert refused.exit_code == 2 and f"governs the models of {mine}, not {other}" in refused.output, command
        assert f"govern init --config {other}" in refused.output
    assert (home / "governance.db").stat().st_size == size

    monkeypatch.setenv("GOVERN_HOME", str(home))
    monkeypatch.setenv("GOVERN_CONFIG", str(other))
    with pytest.raises(GovernanceError, match="governs the models of"):
        Settings.from_env().require_state()  # what the code location does before loading anything

    assert govern(home, other, "init").exit_code == 0  # pointed at the other config, on purpose
    moved = govern(home, other, "status", "--json")
    assert [m["model"] for m in json.loads(moved.output)] == ["other_model"]


def test_production_names_its_config_and_the_state_dir_file_decides_nothing(tmp_path, monkeypatch):
    home = tmp_path / "state"
    home.mkdir()
    (home / "config-path").write_text(f"{tmp_path / 'planted.yaml'}\n")  # written by whoever can write the dir
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOVERN_CONFIG", raising=False)
    monkeypatch.setenv("GOVERN_DATABASE_URL", "postgresql://govern@db/governance")
    settings = Settings.from_env(home=home)
    assert settings.config_path == tmp_path / "governance.yaml"
    settings.require_its_config()  # each production process names its config; the file decides nothing


def test_the_code_location_refuses_a_state_dir_that_does_not_exist(tmp_path):
    """`dagster ... -m definitions` with a forgotten or mistyped GOVERN_HOME: a clear refusal, and no state dir
    made up in the working directory."""
    env = {**os.environ, "GOVERN_HOME": str(tmp_path / "typo"), "GOVERN_CONFIG": str(SMALL_CONFIG)}
    env.pop("GOVERN_DATABASE_URL", None)
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "list", "-m", "definitions"],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert listed.returncode != 0
    assert f"no governance state at {tmp_path / 'typo'}" in listed.stderr + listed.stdout
    assert list(tmp_path.iterdir()) == []
