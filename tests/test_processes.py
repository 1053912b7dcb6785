"""Stopping what a command started (`govern ui`, the demo's API, the daemon), whatever signal it honours."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from governance.processes import stop_process_groups

# A child that starts a grandchild, then waits; it reports each signal it receives, and ignores SIGINT
# when asked to (as a process started under nohup or in a script's background does).
CHILD = """
import signal, subprocess, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
def report(signum, frame):
    print(signal.Signals(signum).name, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, report)
if sys.argv[1] == "honour":
    signal.signal(signal.SIGINT, report)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], stdout=subprocess.DEVNULL)
print("ready", flush=True)
time.sleep(600)
"""


def _start(mode: str) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert child.stdout.readline().strip() == "ready"
    return child


def _live_members(group: int) -> list[int]:
    """Processes of the group that still run (a zombie has stopped; init reaps it when it gets to it)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while listed
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_every_group_stops_with_the_gentlest_signal_it_honours():
    children = honours, ignores, stubborn = _start("honour"), _start("ignore"), _start("ignore")
    try:
        os.kill(stubborn.pid, signal.SIGSTOP)  # cannot act on SIGINT or SIGTERM until killed
        started = time.monotonic()
        stop_process_groups(list(children), grace=2.0)
        # Two stages wait out their grace (SIGINT ignored; SIGTERM held by the stopped one); SIGKILL ends at once,
        # though the killed group leaves exited grandchildren that a container's init may never reap.
        assert time.monotonic() - started < 5.5
        assert [p.poll() is not None for p in children] == [True, True, True]
        assert honours.stdout.read().strip() == "SIGINT"
        assert ignores.stdout.read().strip() == "SIGTERM"
        assert stubborn.wait() == -signal.SIGKILL
        assert [_live_members(p.pid) for p in children] == [[], [], []], "a grandchild outlived its group's stop"
    finally:
        for child in children:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
