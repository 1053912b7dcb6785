"""Nothing touches the network: a whole candidate run (DVC, Great Expectations, MLflow, Dagster, SHAP)
attempts no connection and no name lookup beyond the loopback interface.

The run happens in a child process whose socket layer records, and refuses, every attempt to reach
another host, so a library's background telemetry thread would be caught too.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO, SMALL_CONFIG

pytestmark = pytest.mark.slow

GUARD = textwrap.dedent("""
    import json, socket, sys
    attempts = []
    LOCAL = {"localhost", "127.0.0.1", "::1", "", None}
    real_getaddrinfo, real_connect, real_connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex

    def _remote(address):
        host = address[0] if isinstance(address, tuple) else address
        return isinstance(host, str) and host not in LOCAL and not host.startswith("127.") and not host.startswith("/")

    def getaddrinfo(host, *args, **kwargs):
        if host not in LOCAL and not str(host).startswith("127."):
            attempts.append(f"lookup {host}")
            raise socket.gaierror(f"offline test: lookup of {host} refused")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and _remote(address):
            attempts.append(f"connect {address}")
            raise OSError(f"offline test: connect to {address} refused")
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and _remote(address):
            attempts.append(f"connect {address}")
            return 111
        return real_connect_ex(self, address)

    socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex = getaddrinfo, connect, connect_ex
""")

RUN = textwrap.dedent("""
    from pathlib import Path
    from tests.helpers import Lifecycle
    life = Lifecycle(Path(sys.argv[1]), Path(sys.argv[2]))
    key, result = life.candidate()
    import threading, time
    time.sleep(2)  # give any background reporter a chance to try
    print(json.dumps({"success": result.success, "attempts": attempts}))
""")


def test_a_candidate_run_attempts_no_network_connection(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", GUARD + RUN, str(tmp_path / "govern"), str(SMALL_CONFIG)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["success"]
    assert outcome["attempts"] == []
