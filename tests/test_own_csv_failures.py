"""A user's own CSV that is missing or has bad rows, run headless with `govern` as processes: every failure is
explained on the command line (not only in Dagster's event log), and a missing file is refused before anything
is created."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from governance.data.generator import CONTRACT, generate_applications
from tests.helpers import small_model, write_config

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
MODEL = "credit_scoring"


def _user(tmp_path: Path, csv: str = "apps.csv"):
    """A config outside the repository naming `csv` beside it, an initialised state dir and dana in its roster;
    returns a runner of `govern` commands."""
    write_config(
        tmp_path / "governance.yaml",
        {MODEL: small_model(source={"file": {"path": csv}}, columns=CONTRACT, min_rows=200)},
    )
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GOVERN_HOME": str(tmp_path / "state"),
        "GOVERN_CONFIG": str(tmp_path / "governance.yaml"),
    }

    def govern(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "govern"), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )

    assert govern("init").returncode == 0
    keygen = govern("keygen", "--principal", "dana", "--role", "data_scientist", "--out", "dana.key", "--json")
    (tmp_path / "dana.pub").write_text(json.loads(keygen.stdout)["public_key"] + "\n")
    assert govern("roster", "add", "dana", "--role", "data_scientist", "--public-key", "dana.pub").returncode == 0
    return govern


def test_a_missing_data_file_fails_config_check_and_train_creates_nothing(tmp_path):
    govern = _user(tmp_path, csv="nowhere.csv")
    named = (
        f"governance.yaml: model '{MODEL}': field 'source.file.path': {tmp_path / 'nowhere.csv'}: data file not found"
    )
    check = govern("config", "check", "governance.yaml")
    assert check.returncode == 1 and named in check.stderr, check.stdout + check.stderr
    trained = govern("train", MODEL, "--as", "dana", "--key", "dana.key")
    assert trained.returncode == 1 and named in trained.stderr, trained.stdout + trained.stderr
    assert "requested by" not in trained.stdout  # nothing was signed
    assert "ledger OK: 0 entries" in govern("ledger", "verify").stdout
    status = govern("status")
    assert json.loads(govern("status", "--json").stdout)[0]["versions"] == []  # no partition
    assert f"no versions yet: `govern train {MODEL} --as YOUR_NAME`" in status.stdout, status.stdout


def test_a_bad_row_fails_the_run_and_train_and_status_say_which_rows(tmp_path):
    generate_applications(1500, seed=3).to_csv(tmp_path / "apps.csv", index=False)
    lines = (tmp_path / "apps.csv").read_text().splitlines()
    income = lines[0].split(",").index("annual_income")
    row = lines[5].split(",")
    row[income] = "12O00"  # a letter O typed for a zero: data row 5
    lines[5] = ",".join(row)
    lines[9] = ",".join(lines[9].split(",")[:5])  # a short row: data row 9
    (tmp_path / "apps.csv").write_text("\n".join(lines) + "\n")
    govern = _user(tmp_path)
    assert govern("config", "check", "governance.yaml").returncode == 0  # the header is right

    trained = govern("train", MODEL, "--as", "dana", "--key", "dana.key")
    out = trained.stdout
    assert trained.returncode == 1, out + trained.stderr
    assert f"{MODEL}-v1: RUN FAILED\n  requested by dana\n" in out
    assert (
        f"  - {MODEL}/validated_applications: 1 blocking asset check failed with ERROR severity: "
        f"{MODEL}/validated_applications: data_contract\n"
    ) in out
    assert f"  - check {MODEL}/validated_applications/data_contract: " in out
    assert "column 'annual_income': 1 of 1500 rows are not numbers: row(s) 5 ('12O00')" in out
    assert "column 'housing': 1 of 1500 rows are null: row(s) 9" in out
    assert "rows are outside" not in out and "type None" not in out
    assert f"next: fix what failed, then `govern train {MODEL} --as dana` again" in out
    for noise in ("Traceback", "dagster._core", "PreviewWarning", "BetaWarning"):
        assert noise not in out + trained.stderr, trained.stderr

    status = govern("status")
    assert f"{MODEL}-v1  requested by dana; RUN FAILED (run " in status.stdout, status.stdout
    assert f"    - {MODEL}/validated_applications: 1 blocking asset check failed" in status.stdout
    failed = json.loads(govern("status", "--json").stdout)[0]["versions"][0]["failed_run"]
    assert any("row(s) 5 ('12O00')" in reason for reason in failed["reasons"])
