"""`govern serve` itself: several worker processes, one decision log, one metrics page."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import MODEL, body, config_file

GOVERN = Path(sys.executable).parent / "govern"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_share_the_decision_log_and_the_metrics(deployed, tmp_path):
    port = free_port()
    config = config_file(tmp_path / "governance.yaml", collect_protected=True, with_linear=False)
    command = [
        str(GOVERN),
        "--home",
        str(deployed.settings.home),
        "--config",
        str(config),
        "serve",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/healthz").json()["models"][MODEL]["served_version"] == 1:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "govern serve did not start"
            time.sleep(0.2)
        before = deployed.decisions.count()
        answers = []
        for i in range(12):  # a new connection each time, so both workers answer
            with httpx.Client(base_url=url) as client:
                answers.append(
                    client.post(
                        f"/models/{MODEL}/decisions", json=body(deployed.applications.iloc[i], deployed.model)
                    ).json()
                )
        assert all(a["version"] == 1 for a in answers)
        assert deployed.decisions.count() - before == 12
        metrics = httpx.get(f"{url}/metrics").text
        served = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(f'govern_serving_requests_total{{model="{MODEL}",status="200"}}')
        )
        assert served == 12
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert server.returncode == 0
