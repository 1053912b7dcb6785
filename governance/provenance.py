"""Which code produced an artefact: the git commit of this project, or its package version; and a digest of the
code that computes the governed assets."""

from __future__ import annotations

import hashlib
import subprocess
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# What computes an asset's value: the core, the asset definitions and the IO manager that stores their outputs.
ASSET_CODE = ("governance", "governance_assets", "resources")


@lru_cache(maxsize=1)
def code_version() -> str:
    """`git:<sha>` (with `+dirty` when the work tree has changes), else `package:<version>`."""
    try:
        sha = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return f"git:{sha}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.CalledProcessError):
        return f"package:{version('governance-assets')}"


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()


@lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 over the Python sources of ASSET_CODE (each file's path and bytes, in path order).

    Unlike `code_version` it changes with any edit (a dirty work tree included) and with nothing else (a commit
    of docs or tests): Dagster compares it with the code version a materialization recorded to say what is stale.
    """
    digest = hashlib.sha256()
    for package in ASSET_CODE:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
