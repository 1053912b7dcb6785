"""Reading a DVC snapshot back: by its md5, checked on every read."""

import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from governance.config import load_config
from governance.data import snapshot
from governance.data.generator import generate_applications
from governance.data.source import DataError, read_snapshot
from governance.errors import GovernanceError
from tests.helpers import SMALL_CONFIG


@pytest.fixture
def taken(settings):
    frame = generate_applications(2_000, seed=3)
    return frame, snapshot.snapshot_frame(settings, "credit_scoring", frame, "generator(test)")


def test_a_snapshot_changed_in_the_cache_is_refused(settings, taken):
    _, snap = taken
    model = load_config(SMALL_CONFIG).model("credit_scoring")
    pd.testing.assert_frame_equal(read_snapshot(settings, model, snap.md5), taken[0])
    cached = snapshot.cached_path(settings, snap.md5)
    os.chmod(cached, 0o644)  # DVC leaves its cache read-only
    cached.write_bytes(cached.read_bytes()[:-1] + b"\0")
    with pytest.raises(DataError, match=re.escape(f"{cached}: data snapshot {snap.md5} changed on disk")):
        read_snapshot(settings, model, snap.md5)


def test_a_snapshot_replaced_by_a_fifo_is_refused_without_blocking(settings, taken):
    """A writer of the state dir puts a named pipe where the snapshot was: reading it would wait forever (serving
    reads a linear model's snapshot while it loads a new champion); only a regular file is a snapshot."""
    _, snap = taken
    model = load_config(SMALL_CONFIG).model("credit_scoring")
    cached = snapshot.cached_path(settings, snap.md5)
    cached.unlink()
    os.mkfifo(cached)
    with pytest.raises(GovernanceError, match=re.escape(f"data snapshot md5 {snap.md5} is not in the DVC cache")):
        read_snapshot(settings, model, snap.md5)


def _files(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `root` with its content and modification time: what a write would change."""
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


@pytest.mark.parametrize("remote", ["as written now", "absolute, as older releases wrote it"])
def test_a_copied_state_dir_snapshots_into_itself_and_never_writes_the_original(settings, taken, tmp_path, remote):
    _, first = taken
    config = settings.dvc_repo / ".dvc" / "config"
    if remote != "as written now":
        config.write_text(re.sub(r"url = .*", f"url = {settings.dvc_remote}", config.read_text()))
    original = _files(settings.home)
    moved = replace(settings, home=tmp_path / "elsewhere" / "govern")
    shutil.copytree(settings.home, moved.home, symlinks=True)

    second = snapshot.snapshot_frame(moved, "credit_scoring", generate_applications(500, seed=9), "generator(copy)")

    assert _files(settings.home) == original  # not a byte, not a timestamp
    assert str(settings.home) not in (moved.dvc_repo / ".dvc" / "config").read_text()
    pushed = moved.dvc_remote / "files" / "md5" / second.md5[:2] / second.md5[2:]
    assert pushed.is_file(), "the copy's snapshot is not in the copy's own DVC remote"
    for snap in (first, second):
        for recorded in (snap.dvc_file, snap.cache_path):
            assert not Path(recorded).is_absolute(), recorded
            assert moved.resolve(recorded).is_file() and moved.resolve(recorded).is_relative_to(moved.home)
