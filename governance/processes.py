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
        running = [p for p in _still_running(running) if _signal_group(p, stop)]
        deadline = time.monotonic() + grace
        while running and time.monotonic() < deadline:
            time.sleep(0.1)
            running = _still_running(running)
        if not running:
            return


def _signal_group(process: subprocess.Popen, signum: int) -> bool:
    """Send `signum` to the process's group; whether it was sent."""
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _still_running(processes: list[subprocess.Popen]) -> list[subprocess.Popen]:
    """The processes whose group still has a member running, from one look at the process table. A member
    that exited but was not reaped (a zombie: its new parent, the container's init, may never reap it) does
    not count."""
    for process in processes:
        process.poll()  # reap the leader, our child
    groups = set()
    for candidate in psutil.process_iter(["status"]):
        try:
            if candidate.info["status"] != psutil.STATUS_ZOMBIE:
                groups.add(os.getpgid(candidate.pid))
        except (ProcessLookupError, PermissionError):
            continue
    return [p for p in processes if p.pid in groups]


def stop_on_sigterm() -> None:
    """`kill`, systemd or `docker stop` (SIGTERM) end this process as Ctrl-C does (KeyboardInterrupt), so that the
    caller's cleanup stops the processes it started instead of leaving them running."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
