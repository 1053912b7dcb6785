"""Dagster's production topology, run: a gRPC code server, the webserver and the daemon as separate processes on
PostgreSQL storage. A candidate launched through the webserver's GraphQL API is queued, dequeued by the daemon
and run to completion in a run worker process the code server starts; then one asked for with `dagster job
launch`, as the README says, without naming a version."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest
from dagster_graphql import DagsterGraphQLClient

from governance.config import load_config
from governance.processes import stop_process_groups
from governance.registry import ModelRegistry
from governance.settings import Settings
from jobs import candidate_job_name
from jobs.candidates import next_candidate_key
from jobs.requests import request_job_name
from programs.daemon import daemon_environment
from programs.instance import open_instance
from programs.topology import LOCATION, Ports, Topology
from tests.helpers import REPO, SMALL_CONFIG, wait_until

pytestmark = pytest.mark.slow
MODEL = "credit_scoring"
DEADLINE_SECONDS = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_candidate_launched_through_the_webserver_runs_in_a_worker_the_daemon_launched(
    tmp_path, postgres_url, monkeypatch
):
    settings = Settings(
        home=tmp_path / "govern",
        config_path=SMALL_CONFIG,
        dagster_database_url=postgres_url,
        policies_override=REPO / "policies",
    )
    monkeypatch.setenv("GOVERN_DAGSTER_DATABASE_URL", postgres_url)  # the instance config names the variable
    ports = Ports(webserver=free_port(), code=free_port())
    with Topology(settings, tmp_path / "logs", ports) as topology:
        instance = open_instance(settings)
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        model = load_config(SMALL_CONFIG).model(MODEL)
        partition = next_candidate_key(instance, ModelRegistry.for_settings(settings), model)
        client = DagsterGraphQLClient(ports.host, port_number=ports.webserver)
        run_id = client.submit_job_execution(
            candidate_job_name(MODEL),
            repository_location_name=LOCATION,
            tags={"dagster/partition": partition},
        )
        deadline = time.monotonic() + DEADLINE_SECONDS
        while (status := client.get_run_status(run_id)) not in (
            dg.DagsterRunStatus.SUCCESS,
            dg.DagsterRunStatus.FAILURE,
        ):
            assert time.monotonic() < deadline, f"run {run_id} still {status} after {DEADLINE_SECONDS} s"
            assert all(p.poll() is None for p in topology.processes.values()), "a topology process exited"
            time.sleep(1)
        assert status == dg.DagsterRunStatus.SUCCESS, (tmp_path / "logs" / "daemon.log").read_text()[-3000:]
        kinds = [
            e
            for e in (
                r.event_log_entry.dagster_event_type for r in instance.get_records_for_run(run_id, limit=1000).records
            )
            if e
        ]
        # queued by the webserver's submission; launched (STARTING) by the daemon's run queue; started by its worker
        assert kinds.index(dg.DagsterEventType.RUN_ENQUEUED) < kinds.index(dg.DagsterEventType.RUN_STARTING)
        assert kinds.index(dg.DagsterEventType.RUN_STARTING) < kinds.index(dg.DagsterEventType.RUN_START)
        run = instance.get_run_by_id(run_id)
        assert run.tags["governance/queue"] == f"{MODEL}/candidate" and run.tags["dagster/partition"] == partition
        assert instance.get_latest_materialization_event(dg.AssetKey([MODEL, "trained_model"])) is not None
        _request_from_the_dagster_cli(settings, instance, tmp_path)
        instance.dispose()


def _request_from_the_dagster_cli(settings: Settings, instance: dg.DagsterInstance, cwd: Path) -> None:
    """The README's headless path with the daemon running: `dagster job launch` of the request job, from outside
    the repo, on the state dir's instance; the candidate_requests sensor adds the next version's partition and
    launches its candidate, which the daemon runs."""
    launched = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "job", "launch", "-w", str(REPO / "workspace.yaml")]
        + ["-j", request_job_name(MODEL)],
        env=daemon_environment(settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    wanted = dg.RunsFilter(job_name=candidate_job_name(MODEL), tags={"dagster/partition": f"{MODEL}-v2"})
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not (runs := instance.get_runs(wanted, limit=1)) or not runs[0].is_finished:
        assert time.monotonic() < deadline, f"no finished {MODEL}-v2 candidate after {DEADLINE_SECONDS} s"
        time.sleep(1)
    assert runs[0].status == dg.DagsterRunStatus.SUCCESS, runs[0].run_id


def test_a_service_manager_s_stop_ends_all_three(tmp_path):
    """`python -m programs.topology` under systemd or `docker stop` gets SIGTERM: it stops the code server, the
    webserver and the daemon as Ctrl-C does (before, it exited alone and left the three running on their ports)."""
    home = tmp_path / "govern"
    env = {**os.environ, "GOVERN_HOME": str(home), "GOVERN_CONFIG": str(SMALL_CONFIG), "PYTHONPATH": str(REPO)}
    env["GOVERN_POLICIES"] = str(REPO / "policies")
    for production in ("GOVERN_DATABASE_URL", "GOVERN_DAGSTER_DATABASE_URL", "MLFLOW_TRACKING_URI"):
        env.pop(production, None)
    ports = Ports(webserver=free_port(), code=free_port())
    command = [sys.executable, "-m", "programs.topology", "--webserver-port", str(ports.webserver)]
    with open(tmp_path / "topology.log", "wb") as log:
        topology = subprocess.Popen(
            [*command, "--code-port", str(ports.code)], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
    children: list[psutil.Process] = []
    try:
        wait_until(lambda: _listening(ports.webserver) or topology.poll() is not None, "the webserver", timeout=180)
        children = psutil.Process(topology.pid).children(recursive=True)
        assert topology.poll() is None and children, (tmp_path / "topology.log").read_text()[-2000:]
        topology.send_signal(signal.SIGTERM)
        topology.wait(timeout=60)
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
        assert not _listening(ports.webserver) and not _listening(ports.code)
    finally:  # a failure leaves nothing running: the three are in sessions of their own
        stop_process_groups([topology])
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
