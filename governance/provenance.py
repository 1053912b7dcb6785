"""Which code produced an artefact: the git commit of this project, or its package version."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


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
