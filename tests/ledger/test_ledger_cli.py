"""`govern ledger verify|checkpoint|show` through the real Typer app on a real ledger file."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import replace

import pytest
from ledger_support import TEMPLATE_SIZE
from typer.testing import CliRunner

from governance import state
from governance.ledger import Checkpoint, CheckpointError
from governance.settings import Settings
from governance.trust.demo import demo_principals
from programs.cli import app
from tests.helpers import REPO

runner = CliRunner()


@pytest.fixture(autouse=True)
def embedded_default(monkeypatch):
    monkeypatch.delenv("GOVERN_DATABASE_URL", raising=False)


@pytest.fixture
def cast(settings):
    """The demo principals: keys in the state dir, roster at its roster path (the system principal signs)."""
    demo_principals(settings)
    assert settings.roster_path == settings.home / "roster.yaml"
    return settings.keys_dir


def govern(settings, *args: str):
    return runner.invoke(app, ["--home", str(settings.home), "ledger", *args])


def test_verify_passes_on_an_intact_ledger(settings, ledger_file):
    result = govern(settings, "verify")
    assert result.exit_code == 0 and f"ledger OK: {TEMPLATE_SIZE} entries verify" in result.output
    assert json.loads(govern(settings, "verify", "--json").output)["ok"] is True


def test_verify_fails_and_names_the_first_bad_entry(settings, ledger_file):
    with closing(sqlite3.connect(ledger_file)) as db, db:
        db.execute("UPDATE ledger_entries SET payload = replace(payload, 'pass', 'PASS') WHERE seq IN (300, 400)")
    result = govern(settings, "verify")
    assert result.exit_code == 1
    assert "ledger FAILED at entry 300: entry 300: payload was altered" in result.output
    report = json.loads(govern(settings, "verify", "--json").output)
    assert (report["ok"], report["first_bad_seq"]) == (False, 300)


def test_checkpoint_then_verify_against_it_catches_truncation(settings, ledger_file, cast):
    out = settings.home / "checkpoint.json"
    signed = govern(settings, "checkpoint", "--out", str(out))
    assert signed.exit_code == 0 and f"checkpoint of {TEMPLATE_SIZE} entries" in signed.output
    checkpoint = Checkpoint.from_json(out.read_text())
    assert (checkpoint.size, checkpoint.signer) == (TEMPLATE_SIZE, "system")
    pem_body = settings.system_key_path.read_text().splitlines()[1]
    assert pem_body not in signed.output and pem_body not in out.read_text()

    extended = govern(settings, "verify", "--checkpoint", str(out))
    assert extended.exit_code == 0 and f"extends the checkpoint of {TEMPLATE_SIZE} entries" in extended.output

    with closing(sqlite3.connect(ledger_file)) as db, db:
        db.execute("DELETE FROM ledger_entries WHERE seq > 590")
        db.execute("DELETE FROM ledger_nodes WHERE (idx + 1) << level > 590")
    assert govern(settings, "verify").exit_code == 0
    truncated = govern(settings, "verify", "--checkpoint", str(out))
    assert truncated.exit_code == 1
    assert "ledger FAILED at entry 591: entry 591 is missing" in truncated.output


def test_a_named_signer_signs_with_their_own_roster_key(settings, ledger_file, cast, tmp_path):
    result = govern(settings, "checkpoint", "--as", "audrey")
    assert result.exit_code == 0 and Checkpoint.from_json(result.output).signer == "audrey"
    # Anyone in the roster can sign a checkpoint (of a log they rewrote, say): verify names whose it expects.
    by_audrey = tmp_path / "audrey.json"
    by_audrey.write_text(result.output)
    refused = govern(settings, "verify", "--checkpoint", str(by_audrey))
    assert refused.exit_code != 0 and str(refused.exception) == (
        f"{by_audrey}: signed by 'audrey', not by 'system'; pass --signer if another principal signs your checkpoints"
    )
    assert govern(settings, "verify", "--checkpoint", str(by_audrey), "--signer", "audrey").exit_code == 0


def test_a_key_that_is_not_the_signers_roster_key_makes_no_checkpoint(settings, ledger_file, cast, tmp_path):
    result = govern(settings, "checkpoint", "--as", "system", "--key", str(cast / "audrey.key"))
    assert result.exit_code != 0 and isinstance(result.exception, CheckpointError)
    unknown = govern(settings, "checkpoint", "--as", "mallory", "--key", str(cast / "audrey.key"))
    assert unknown.exit_code != 0 and "mallory" in str(unknown.exception)


def test_a_checkpoint_whose_signature_was_replaced_does_not_count(settings, ledger_file, cast, tmp_path):
    by_system = Checkpoint.from_json(govern(settings, "checkpoint").output)
    by_audrey = Checkpoint.from_json(govern(settings, "checkpoint", "--as", "audrey").output)
    forged = tmp_path / "forged.json"
    forged.write_text(replace(by_system, signature=by_audrey.signature).to_json())
    result = govern(settings, "verify", "--checkpoint", str(forged))
    assert result.exit_code != 0 and isinstance(result.exception, CheckpointError)
    assert "does not verify" in str(result.exception)


def test_bad_key_files_are_named(settings, ledger_file, cast, tmp_path):
    missing = tmp_path / "missing.key"
    result = govern(settings, "checkpoint", "--key", str(missing))
    assert result.exit_code != 0 and str(missing) in str(result.exception)
    readable = tmp_path / "readable.key"
    readable.write_bytes((cast / "system.key").read_bytes())
    readable.chmod(0o644)
    result = govern(settings, "checkpoint", "--key", str(readable))
    assert result.exit_code != 0 and "chmod 600" in str(result.exception)


def test_show_filters_and_limits(settings, ledger_file):
    result = govern(settings, "show", "--model", "taiwan_default", "--limit", "3", "--json")
    assert result.exit_code == 0
    entries = json.loads(result.output)
    assert [e["seq"] for e in entries] == [592, 595, 598]
    assert all(e["subject"]["model"] == "taiwan_default" for e in entries)
    human = govern(settings, "show", "--action", "gate.decision", "--version", "6", "--limit", "0")
    assert human.exit_code == 0
    assert "#504" in human.output and "gate.decision" in human.output and "#599" in human.output
    assert govern(settings, "show", "--model", "nobody").output.strip() == "no ledger entries match"


def test_show_lists_an_altered_entry_as_altered_rather_than_failing(settings, ledger_file):
    with closing(sqlite3.connect(ledger_file)) as db, db:
        db.execute("UPDATE ledger_entries SET payload = CAST(? AS BLOB) WHERE seq = 598", (b'{"forged":true}',))
    listed = json.loads(govern(settings, "show", "--model", "taiwan_default", "--limit", "3", "--json").output)
    assert [(e["seq"], e["altered"]) for e in listed] == [
        (592, None),
        (595, None),
        (598, "entry 598: its payload does not hash to its payload_digest"),
    ]
    human = govern(settings, "show", "--model", "taiwan_default", "--limit", "1").output
    assert "ALTERED: entry 598: its payload does not hash to its payload_digest" in human


def test_a_state_dir_that_does_not_exist_is_an_error_not_an_empty_green_ledger(tmp_path):
    """A mistyped --home must not verify "0 entries" (nor create a state there); help still works."""
    missing = tmp_path / "typo"
    for args in (["ledger", "verify"], ["status"], ["trace", "some-decision"]):
        result = runner.invoke(app, ["--home", str(missing), *args])
        assert result.exit_code == 2 and f"no governance state at {missing}" in result.output, result.output
    assert runner.invoke(app, ["--home", str(missing), "ledger", "verify", "--help"]).exit_code == 0
    assert not missing.exists()
    state.prepare(Settings(home=missing, config_path=REPO / "governance.yaml"))  # what `govern ui` does first
    assert runner.invoke(app, ["--home", str(missing), "ledger", "verify"]).exit_code == 0


def test_a_missing_checkpoint_file_is_named_once(settings, ledger_file, tmp_path):
    missing = tmp_path / "none.json"
    result = govern(settings, "verify", "--checkpoint", str(missing))
    assert str(result.exception) == f"{missing}: cannot read the checkpoint: No such file or directory"
