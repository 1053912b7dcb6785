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
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psutil
import pytest
from dagster_graphql import DagsterGraphQLClient

from governance.config import load_config
from governance.processes import stop_process_groups
from governance.registry import ModelRegistry
from governance.serving.app import create_app
from governance.settings import Settings
from governance.trust.demo import demo_principals
from jobs import candidate_job_name
from jobs.candidates import next_candidate_key
from jobs.requests import request_job_name
from programs.daemon import daemon_environment
from programs.instance import open_instance
from programs.topology import LOCATION, Ports, Topology
from tests.conftest import new_postgres_database
from tests.helpers import REPO, SMALL_CONFIG, RunningAPI, wait_until
from tests.test_ui import BROWSER_ARGS, CHROMIUM, _skip_welcome

pytestmark = pytest.mark.slow
MODEL = "credit_scoring"
DEADLINE_SECONDS = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[tuple[Settings, Ports, dg.DagsterInstance, Path]]:
    """The three processes on PostgreSQL storage, with the demo cast in the roster, for the module's tests."""
    tmp_path = tmp_path_factory.mktemp("topology")
    with new_postgres_database("govern_test", schemas=True) as url, pytest.MonkeyPatch.context() as env:
        env.setenv("GOVERN_DAGSTER_DATABASE_URL", url)  # the instance config names the variable
        settings = Settings(
            home=tmp_path / "govern",
            config_path=SMALL_CONFIG,
            dagster_database_url=url,
            policies_override=REPO / "policies",
        )
        ports = Ports(webserver=free_port(), code=free_port())
        with Topology(settings, tmp_path / "logs", ports) as running:
            demo_principals(settings)
            instance = open_instance(settings)
            try:
                yield settings, ports, instance, tmp_path
            finally:
                instance.dispose()
                assert all(p.poll() is None for p in running.processes.values()), "a topology process exited"


def _next_version(settings: Settings, instance: dg.DagsterInstance) -> str:
    model = load_config(SMALL_CONFIG).model(MODEL)
    return next_candidate_key(instance, ModelRegistry.for_settings(settings), model)


def test_a_candidate_launched_through_the_webserver_runs_in_a_worker_the_daemon_launched(topology):
    settings, ports, instance, tmp_path = topology
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    partition = _next_version(settings, instance)
    client = DagsterGraphQLClient(ports.host, port_number=ports.webserver)
    run_id = client.submit_job_execution(
        candidate_job_name(MODEL), repository_location_name=LOCATION, tags={"dagster/partition": partition}
    )
    deadline = time.monotonic() + DEADLINE_SECONDS
    while (status := client.get_run_status(run_id)) not in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE):
        assert time.monotonic() < deadline, f"run {run_id} still {status} after {DEADLINE_SECONDS} s"
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


def _request_from_the_dagster_cli(settings: Settings, instance: dg.DagsterInstance, cwd: Path) -> None:
    """The README's headless path with the daemon running: `dagster job launch` of the request job, from outside
    the repo, on the state dir's instance; the candidate_requests sensor adds the next version's partition and
    launches its candidate, which the daemon runs."""
    version = _next_version(settings, instance)
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
    _candidate_ran(instance, version)


def _candidate_ran(instance: dg.DagsterInstance, version: str) -> None:
    wanted = dg.RunsFilter(job_name=candidate_job_name(MODEL), tags={"dagster/partition": version})
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not (runs := instance.get_runs(wanted, limit=1)) or not runs[0].is_finished:
        assert time.monotonic() < deadline, f"no finished {version} candidate after {DEADLINE_SECONDS} s"
        time.sleep(1)
    assert runs[0].status == dg.DagsterRunStatus.SUCCESS, runs[0].run_id


def test_a_candidate_launched_from_the_launchpad_waits_in_the_console_for_two_approvers(topology):
    """A data engineer opens the request job's Launchpad in the Dagster UI and presses Launch Run (Dagster has
    no login, so nobody signs); the daemon runs it and the candidate it asks for. The console then shows the
    version waiting for approval by an unknown requester, for two different approvers."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: `make test` installs Debian's package")
    from playwright.sync_api import sync_playwright

    settings, ports, instance, _ = topology
    version = _next_version(settings, instance)
    dagster_ui = f"http://{ports.host}:{ports.webserver}"
    with (
        sync_playwright() as playwright,
        RunningAPI(create_app(settings, load_config(SMALL_CONFIG), poll_seconds=0.5)) as api,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"{dagster_ui}/locations/{LOCATION}/jobs/{request_job_name(MODEL)}/playground")
        _skip_welcome(page)
        page.get_by_role("button", name="Launch Run").click()
        _candidate_ran(instance, version)

        page.goto(f"{api.url}/console/models/{MODEL}")
        shown = page.inner_text("main")
        browser.close()
    unknown = "requested by unknown (no verified signed request: two different approvers must approve it)"
    assert f"{version} waits for approval of evidence pack" in shown, shown
    assert f"{unknown}; may approve: ravi, rhea)" in shown, shown


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
