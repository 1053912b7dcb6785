"""Stopping the processes a command started, with everything they started in turn."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil


def stop_process_groups(processes: list[subprocess.Popen], grace: float = 10.0) -> None:
    """Stop each process's whole group, started with `start_new_session=True` (`dagster dev`'s webserver,
    daemon and code servers; a server's workers): SIGINT as Ctrl-C would, then SIGTERM, then SIGKILL, each
    given `grace` seconds and sent only to groups still running. A group started where SIGINT is ignored
    (under nohup, or in the background of a script) still stops."""
    running = list(processes)
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        running = [p for p in running if _signal_group(p, stop)]
        deadline = time.monotonic() + grace
        while running and time.monotonic() < deadline:
            time.sleep(0.1)
            running = [p for p in running if _group_running(p)]
        if not running:
            return


def _signal_group(process: subprocess.Popen, signum: int) -> bool:
    """Send `signum` to the process's group if any of it still runs; whether it was sent."""
    if not _group_running(process):
        return False
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _group_running(process: subprocess.Popen) -> bool:
    """Whether a process of the group still runs. One that exited but was not reaped (a zombie: its new parent,
    the container's init, may never reap it) does not."""
    process.poll()  # reap the leader, our child
    for candidate in psutil.process_iter(["status"]):
        try:
            if os.getpgid(candidate.pid) == process.pid and candidate.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError):
            continue
    return False
