"""`govern ui` fails fast: it checks config, policies and state before starting anything, and exits non-zero
naming the part that did not come up, with nothing left running.

Run as a person runs it: the installed `govern` command in a shell, outside the repo where that matters.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.helpers import REPO, SMALL_CONFIG

pytestmark = pytest.mark.slow
GOVERN = str(Path(sys.executable).parent / "govern")


def _govern_ui(cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    ports = [str(_free_port()) for _ in range(3)]
    base = {k: v for k, v in os.environ.items() if not k.startswith("GOVERN_")}
    return subprocess.run(
        [GOVERN, "ui", "--port", ports[0], "--mlflow-port", ports[1], "--api-port", ports[2]],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _broken_policies(tmp_path: Path) -> dict[str, str]:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    with (policies / "fairness.cedar").open("a") as cedar:
        cedar.write("permit (principal, action, resource) when { context.")
    return {"GOVERN_CONFIG": str(SMALL_CONFIG), "GOVERN_POLICIES": str(policies)}


def _broken_config(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "governance.yaml"
    config.write_text("models:\n  credit_scoring:\n    risk_tier: extreme\n")
    return {"GOVERN_CONFIG": str(config)}


@pytest.mark.parametrize(
    "broken, reason",
    [
        (lambda tmp: {}, "governance.yaml: config file not found"),  # outside the repo, only GOVERN_HOME
        (_broken_config, "field 'risk_tier': Input should be 'high', 'medium' or 'low'"),
        (_broken_policies, "fairness.cedar:9: syntax error"),
    ],
    ids=["only-govern-home-outside-the-repo", "broken-config", "broken-policy"],
)
def test_a_bad_setup_is_refused_with_its_reason_before_anything_starts(tmp_path, broken, reason):
    home = tmp_path / "home"
    refused = _govern_ui(tmp_path, {"GOVERN_HOME": str(home), **broken(tmp_path)}, timeout=120)
    assert refused.returncode != 0
    assert reason in refused.stderr + refused.stdout
    assert "Dagster UI:" not in refused.stdout and "checking the code location" not in refused.stdout
    assert not home.exists(), "a refused start wrote to the state dir"


def test_a_part_that_does_not_come_up_is_named_and_nothing_is_left_running(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as taken:  # the scoring API's port is held by someone else: `govern serve` cannot bind
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        api = f"http://127.0.0.1:{taken.getsockname()[1]}"
        ports = ["--port", str(_free_port()), "--mlflow-port", str(_free_port())]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GOVERN_")},
            "GOVERN_HOME": str(home),
            "GOVERN_CONFIG": str(SMALL_CONFIG),
            "GOVERN_POLICIES": str(REPO / "policies"),
        }
        failed = subprocess.run(
            [GOVERN, "ui", *ports, "--api-port", str(taken.getsockname()[1])],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert failed.returncode != 0, failed.stdout
    assert f"scoring API: {api}/docs   console: {api}/console/" in failed.stdout  # said once all were started
    assert "scoring API (govern serve) exited with status" in failed.stderr + failed.stdout
    assert "stopped the others" in failed.stderr + failed.stdout
    assert _started_by(home) == [], "a part of `govern ui` outlived it"


def test_dagsters_metadata_links_name_the_console_it_prints(tmp_path):
    """`govern ui --api-port N` serves the console at port N; the Dagster processes it starts write links to
    that console into asset metadata (their `serve_url`, as the code location resolved it), not to port 8000,
    and to the MLflow UI on its --mlflow-port, not 5000."""
    home, port, api_port, mlflow_port = tmp_path / "home", _free_port(), _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GOVERN_")},
        "GOVERN_HOME": str(home),
        "GOVERN_CONFIG": str(SMALL_CONFIG),
        "GOVERN_POLICIES": str(REPO / "policies"),
    }
    command = [GOVERN, "ui", "--port", str(port), "--mlflow-port", str(mlflow_port), "--api-port", str(api_port)]
    ui = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = _printed_console(ui, deadline=time.monotonic() + 240)
        graphql, deadline = f"http://127.0.0.1:{port}/graphql", time.monotonic() + 240
        linked = _resource_value(graphql, "governance", "serve_url", deadline)
        mlflow = _resource_value(graphql, "governance", "mlflow_ui_url", deadline)
    finally:
        ui.terminate()  # as Ctrl-C: it stops what it started
        ui.wait(timeout=120)
    assert printed == f"http://127.0.0.1:{api_port}/console/"
    assert linked == f"http://127.0.0.1:{api_port}"
    assert mlflow == f"http://127.0.0.1:{mlflow_port}"  # the MLflow UI it started, not port 5000
    assert _started_by(home) == [], "a part of `govern ui` outlived it"


def _printed_console(ui: subprocess.Popen, deadline: float) -> str:
    """The console address `govern ui` prints once everything is started."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in ui.stdout], daemon=True).start()
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert ui.poll() is None, f"govern ui exited with {ui.returncode}: {''.join(seen)[-3000:]}"
            continue
        seen.append(line)
        if "console: " in line:
            return line.split("console: ")[1].split()[0]
    raise AssertionError(f"govern ui printed no console address: {''.join(seen)[-3000:]}")


RESOURCE_QUERY = """
query ($selector: ResourceSelector!) {
  topLevelResourceDetailsOrError(resourceSelector: $selector) {
    __typename
    ... on ResourceDetails { configuredValues { key value } }
  }
}
"""


def _resource_value(graphql: str, resource: str, key: str, deadline: float) -> str:
    """A configured value of a resource as the Dagster webserver's code location loaded it (once it is up)."""
    selector = {"repositoryLocationName": "governance_assets", "repositoryName": "__repository__"}
    variables = {"selector": {**selector, "resourceName": resource}}
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = httpx.post(graphql, json={"query": RESOURCE_QUERY, "variables": variables}, timeout=10).json()
        except httpx.HTTPError:
            answer = None
        found = (answer or {}).get("data", {}) or {}
        details = found.get("topLevelResourceDetailsOrError") or {}
        if details.get("__typename") == "ResourceDetails":
            values = {v["key"]: v["value"] for v in details["configuredValues"]}
            return json.loads(values[key])
        time.sleep(1)
    raise AssertionError(f"Dagster's webserver did not show the {resource} resource: {answer}")


def _started_by(home: Path) -> list[str]:
    """Live processes whose environment names this state dir: what `govern ui` started (or they started)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and process.environ().get("GOVERN_HOME") == str(home):
                found.append(f"{process.pid}: {' '.join(process.info['cmdline'] or [])}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
