"""Dagster's production topology on one machine: a gRPC code server, the webserver and the daemon as separate
processes on the state dir's instance (PostgreSQL storage when `GOVERN_DAGSTER_DATABASE_URL` is set).

    python -m programs.topology [--host 127.0.0.1] [--webserver-port 3000] [--code-port 4266]

The code server (`dagster api grpc`) is the only process that imports the governed models' definitions; the
webserver and the daemon reach it through `deploy/workspace.grpc.yaml`-style workspace (written into the state
dir, pointing at the chosen port), and the daemon's run launcher starts each run in its own run worker process.
This is the shape the Helm chart deploys (deploy/helm/values.yaml: user code deployment, webserver, daemon),
and what `deploy/Procfile` lists for a process manager. Stopped with Ctrl-C (each process by its own group).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from governance.processes import stop_on_sigterm, stop_process_groups
from governance.settings import Settings, apply_offline_env
from programs.daemon import WORKSPACE, daemon_environment
from programs.instance import create_databases

LOCATION = "governance_assets"


@dataclass(frozen=True)
class Ports:
    host: str = "127.0.0.1"
    webserver: int = 3000
    code: int = 4266


def workspace_file(settings: Settings, ports: Ports) -> Path:
    """The workspace of the webserver and the daemon: the code server's address, never the code itself."""
    path = settings.dagster_home / "workspace.grpc.yaml"
    server = {"host": ports.host, "port": ports.code, "location_name": LOCATION}
    path.write_text(yaml.safe_dump({"load_from": [{"grpc_server": server}]}, sort_keys=False))
    return path


def commands(settings: Settings, ports: Ports) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    workspace = str(workspace_file(settings, ports))
    return {
        "code": [
            str(bin_dir / "dagster"), "api", "grpc", "--module-name", "definitions",
            "--attribute", "defs", "--host", ports.host, "--port", str(ports.code),
        ],
        "webserver": [
            str(bin_dir / "dagster-webserver"), "-w", workspace, "-h", ports.host, "-p", str(ports.webserver),
        ],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", workspace],
    }  # fmt: skip


class Topology:
    """The three processes for the duration of a `with` block; their output in `log_dir/<name>.log`."""

    def __init__(self, settings: Settings, log_dir: Path, ports: Ports = Ports()) -> None:
        self.settings, self.log_dir, self.ports = settings, log_dir, ports
        self.processes: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> Topology:
        create_databases(self.settings)
        env = daemon_environment(self.settings)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for name, command in commands(self.settings, self.ports).items():
                with open(self.log_dir / f"{name}.log", "ab") as log:
                    self.processes[name] = subprocess.Popen(
                        command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=WORKSPACE.parent,
                        start_new_session=True,
                    )  # fmt: skip
                if name == "code":
                    self.wait_for_port(self.ports.code, "code server")
            self.wait_for_port(self.ports.webserver, "webserver")
        except BaseException:  # a stop (or a failure) while starting: what started stops too
            stop_process_groups(list(self.processes.values()))
            raise
        return self

    def __exit__(self, *_exc) -> None:
        stop_process_groups(list(self.processes.values()))

    def wait_for_port(self, port: int, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dead = [name for name, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited; see {self.log_dir}")
            try:
                with socket.create_connection((self.ports.host, port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {what} did not listen on port {port} within {timeout:.0f} s") from None
                time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=Ports.host)
    parser.add_argument("--webserver-port", type=int, default=Ports.webserver)
    parser.add_argument("--code-port", type=int, default=Ports.code)
    args = parser.parse_args()
    apply_offline_env()
    settings = Settings.from_env()
    ports = Ports(args.host, args.webserver_port, args.code_port)
    stop_on_sigterm()  # a service manager's stop must not leave the three running
    with Topology(settings, settings.home / "logs", ports) as topology:
        print(f"webserver http://{ports.host}:{ports.webserver}, code server {ports.host}:{ports.code}, daemon; "
              f"logs in {topology.log_dir}; Ctrl-C stops all three", flush=True)  # fmt: skip
        try:
            while all(p.poll() is None for p in topology.processes.values()):
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
