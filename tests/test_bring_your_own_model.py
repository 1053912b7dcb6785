"""The README's "Configure your own model" walkthrough, followed literally with the real Taiwan data.

What a reader does, as processes (no Python API of the project): in a directory of their own outside the
repository, the README's config saved as `governance.yaml` beside the data as `clients.csv` (all 30,000 rows,
as the README says) and its `application.json`, then every command of the walkthrough's shell blocks, in order,
each run by bash with the earlier `export`s in force, the repository's venv on PATH and PYTHONPATH at the
repository under test: `govern config check`, `govern init`, `govern keygen` and `govern roster add` for each
person, `govern train` signed by the data scientist, the approve command it printed (checked against the
README's; the same command as dana, the requester, is refused), the headless release with the `dagster` CLI on
the same instance, `govern status`, `govern serve` (on a free port instead of the README's 8000) and the README's
curl, sent with httpx. The answer must be a governed decision of the deployed version, whose reasons are the
config's reason texts and never name a protected attribute, and `govern trace` must follow its decision id.
62-107 s measured on two cores shared with other test sessions (load 3-5); `govern train` on the 30,000 rows took
17 s of it on a quieter machine.
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests import readme
from tests.conftest import DATASETS, REPO

pytestmark = pytest.mark.slow
TAIWAN = DATASETS / "taiwan_credit_default.csv"
if not TAIWAN.is_file():  # a worktree beside the main checkout: the data sits beside that checkout
    TAIWAN = Path("/work/shared/datasets/taiwan_credit_default.csv")
BIN = Path(sys.executable).parent
MODEL = "card_default"


class Shell:
    """The reader's terminal: each command run by bash in their directory, the exports given so far in force."""

    def __init__(self, cwd: Path, env: dict) -> None:
        self.cwd, self.env, self.exports = cwd, env, []

    def script(self, command: str) -> list[str]:
        return ["bash", "-c", "\n".join(["set -eo pipefail", *self.exports, command])]

    def run(self, command: str, *, ok: bool = True) -> str:
        done = subprocess.run(
            self.script(command), cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=600, check=False
        )
        output = done.stdout + done.stderr
        assert (done.returncode == 0) == ok, f"{command}: exit {done.returncode}\n{output[-4000:]}"
        assert "PRIVATE KEY" not in output, f"{command} printed a private key"
        return output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curl_request(command: str, port: int, cwd: Path) -> httpx.Request:
    """The request the README's curl command sends, to the port the test serves on."""
    words, method, headers, content, url = shlex.split(command)[1:], "GET", {}, b"", ""
    while words:
        word = words.pop(0)
        if word == "-X":
            method = words.pop(0)
        elif word == "-H":
            name, _, value = words.pop(0).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = words.pop(0)
            content = (cwd / data[1:]).read_bytes() if data.startswith("@") else data.encode()
            method = "POST" if method == "GET" else method
        else:
            assert not word.startswith("-"), f"the README's curl uses {word}, which this test does not send"
            url = word
    _host, path = re.fullmatch(r"(?:http://)?(localhost|127\.0\.0\.1):\d+(/.*)", url).groups()
    return httpx.Request(method, f"http://127.0.0.1:{port}{path}", headers=headers, content=content)


@pytest.mark.skipif(not TAIWAN.is_file(), reason=f"real dataset not present at {TAIWAN}")
def test_the_readme_walkthrough_takes_the_taiwan_data_to_a_served_decision(tmp_path):
    user = tmp_path / "card-risk"  # the reader's own directory, outside the repository
    user.mkdir()
    shutil.copyfile(TAIWAN, user / "clients.csv")
    (user / "governance.yaml").write_text(readme.config())
    (user / "application.json").write_text(readme.application())
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    shell, port, said, server = Shell(user, env), free_port(), {}, None
    try:
        for command in readme.commands():
            if command.startswith("export "):
                shell.exports.append(command)
            elif "<digest>" in command:  # the approve command `govern train` printed, with its pack's digest
                printed = re.search(r"then: (govern approve .*)$", said["govern train"], re.M).group(1)
                template = re.escape(command).replace(re.escape("<digest>"), "[0-9a-f]{64}")
                assert re.fullmatch(template, printed), f"govern train printed {printed!r}, the README {command!r}"
                refused = shell.run(printed.replace("--as ravi", "--as dana"), ok=False)  # the requester
                assert "approve by dana refused" in refused
                said["govern approve"] = shell.run(printed)
            elif command.endswith("&"):  # govern serve in the background
                serve = command.removesuffix("&").strip()
                assert re.fullmatch(r"govern serve --port 8000", serve), serve
                log = (tmp_path / "serve.log").open("wb")
                server = subprocess.Popen(
                    shell.script(f"exec {serve.replace('8000', str(port))}"),
                    cwd=user,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                ready = [f"{MODEL}: serving v1", f"Uvicorn running on http://127.0.0.1:{port}"]  # the README's
                deadline = time.monotonic() + 120
                while not all(line in (tmp_path / "serve.log").read_text() for line in ready):
                    assert server.poll() is None, (tmp_path / "serve.log").read_text()
                    assert time.monotonic() < deadline, f"govern serve never logged {ready}"
                    time.sleep(0.2)
            elif command.startswith("curl "):
                with httpx.Client(timeout=30) as client:
                    response = client.send(curl_request(command, port, user))
                assert response.status_code == 200, response.text
                said["curl"] = response.json()
            else:
                said[" ".join(command.split()[:2])] = shell.run(command)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
    served = (tmp_path / "serve.log").read_text()  # uvicorn re-raises the SIGTERM it shut down on gracefully
    assert server.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in served, served
    trace = shell.run(f"govern trace {said['curl']['decision_id']}")  # the README: the decision id it follows

    assert said["govern config"].startswith("governance.yaml: valid\n  card_default (high risk): 20 features")
    assert "warning" not in said["govern config"]
    assert "state dir ready" in said["govern init"]
    assert "version 4 adds system (automation)" in said["govern roster"]
    keys = sorted(p.name for p in (tmp_path / ".config" / "govern" / "keys").iterdir())
    assert keys == ["dana.key", "ravi.key"] and (user / "state" / "keys" / "system.key").is_file()
    trained = said["govern train"]
    assert f"{MODEL}/trained_model: done" in trained and f"{MODEL}/approval_request: done" in trained
    assert f"{MODEL}-v1: PENDING APPROVAL\n  requested by dana\n" in trained
    assert f"{MODEL}-v1 approved by ravi (model_risk_approver)" in said["govern approve"]
    assert "RUN_SUCCESS" in said["DAGSTER_HOME=$GOVERN_HOME/dagster dagster"]
    assert "champion v1 (deployed by system:production_deployment at " in said["govern status"]

    answer, config = said["curl"], yaml.safe_load(readme.config())["models"][MODEL]
    assert answer["model"] == MODEL and answer["version"] == 1 and not answer["safe_state"]
    assert answer["outcome"] == "decline" and answer["score"] >= config["decisioning"]["decline_at_or_above"]
    protected = {attribute["column"] for attribute in config["protected_attributes"]}
    assert 1 <= len(answer["reasons"]) <= 4
    for reason in answer["reasons"]:
        assert reason["feature"] not in protected and reason["text"] == config["reason_codes"][reason["feature"]]
    assert f"decline, score {answer['score']:.4f}, by {MODEL}-v1" in trace
    assert "candidate requested by dana" in trace
