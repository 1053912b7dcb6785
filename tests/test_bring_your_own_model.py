"""Bring your own model with commands and config only: the real Taiwan data, from `govern init` to production.

What a new user does, as processes (no Python API of the project): a CSV and a config in a directory
outside the repository, `govern config check`, `govern init`, `govern keygen` and `govern roster add` for
each person, `govern train` signed by the data scientist, `govern approve` by a model risk approver, and
the release the approval sensor would launch, run headless with the `dagster` CLI on the same instance.
Rows are sampled (the first 6,000 of 30,000) to keep it short: 616 s measured on two cores shared with
five other test sessions (load 14); the candidate run itself took 37 s of that when the machine was quieter.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import DATASETS
from tests.test_second_model import TAIWAN_MODEL

pytestmark = pytest.mark.slow
TAIWAN = DATASETS / "taiwan_credit_default.csv"
if not TAIWAN.is_file():  # a worktree beside the main checkout: the data sits beside that checkout
    TAIWAN = Path("/work/shared/datasets/taiwan_credit_default.csv")
BIN = Path(sys.executable).parent
MODEL = "card_default"
PEOPLE = {"dana": "data_scientist", "ravi": "model_risk_approver", "system": "automation"}


def run(cwd: Path, *command: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.skipif(not TAIWAN.is_file(), reason=f"real dataset not present at {TAIWAN}")
def test_taiwan_data_reaches_production_by_commands_only(tmp_path):
    with TAIWAN.open() as source:
        (tmp_path / "clients.csv").write_text("".join(line for _, line in zip(range(6001), source)))
    model = {**TAIWAN_MODEL, "source": {"file": {"path": "clients.csv"}}}  # relative to the config
    (tmp_path / "governance.yaml").write_text(yaml.safe_dump({"models": {MODEL: model}}, sort_keys=False))
    state = tmp_path / "state"
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GOVERN_HOME": str(state),
        "GOVERN_CONFIG": str(tmp_path / "governance.yaml"),
    }

    def govern(*args: str) -> subprocess.CompletedProcess:
        done = run(tmp_path, str(BIN / "govern"), *args, env=env)
        assert done.returncode == 0, f"govern {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    assert "card_default (high risk): 21 features" in govern("config", "check", "governance.yaml").stdout
    assert "state dir ready" in govern("init").stdout
    (tmp_path / "keys").mkdir()
    for name, role in PEOPLE.items():
        out = state / "keys" / "system.key" if name == "system" else tmp_path / "keys" / f"{name}.key"
        printed = json.loads(govern("keygen", "--principal", name, "--roles", role, "--out", str(out), "--json").stdout)
        (tmp_path / "keys" / f"{name}.pub").write_text(printed["public_key"] + "\n")
        govern("roster", "add", name, "--role", role, "--public-key", f"keys/{name}.pub")

    trained = govern("train", MODEL, "--as", "dana", "--key", "keys/dana.key").stdout
    assert "card_default/trained_model: done" in trained and "card_default/approval_request: done" in trained
    assert "card_default-v1: PENDING APPROVAL\n  requested by dana\n" in trained
    command = re.search(r"then: (govern approve .*)$", trained, re.MULTILINE).group(1)
    assert command.startswith(f"govern approve {MODEL} {MODEL}-v1 --as ravi --evidence ")
    refused = run(
        tmp_path, str(BIN / "govern"), "approve", MODEL, "1", "--as", "dana", "--key", "keys/dana.key", env=env
    )
    assert refused.returncode != 0 and "approve by dana refused" in refused.stdout + refused.stderr
    govern(*command.split()[1:], "--key", "keys/ravi.key")

    dagster = {**env, "DAGSTER_HOME": str(state / "dagster")}
    release = run(
        tmp_path,
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "definitions",
        "--select",
        f"{MODEL}/approved_release,{MODEL}/production_deployment",
        "--partition",
        f"{MODEL}-v1",
        env=dagster,
    )
    assert release.returncode == 0, release.stdout[-3000:] + release.stderr[-3000:]
    status = json.loads(govern("status", "--json").stdout)[0]
    assert status["champion"] == 1 and status["last_move"]["kind"] == "deploy" and not status["incidents"]
    assert status["versions"][0]["requested_by"] == "dana" and status["versions"][0]["gate"]["allowed"]
    assert "requested by dana" in govern("lineage", MODEL, "1").stdout
