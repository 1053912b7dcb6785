"""Versioned snapshots of source data with DVC.

The state dir holds a DVC repository (no git; analytics off) with a local
remote. A snapshot writes the source bytes into the repository, `dvc add`s and
`dvc push`es them, and returns the md5 DVC recorded. Content-addressed copies
in the cache and the remote keep every snapshot ever taken readable by its md5,
so a model version can always be traced back to, and rebuilt from, its data.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import yaml
from filelock import FileLock

from governance.digests import file_sha256
from governance.errors import GovernanceError
from governance.settings import Settings
from governance.timestamps import utc_timestamp


@dataclass(frozen=True)
class Snapshot:
    """One DVC-tracked data snapshot."""

    model: str
    md5: str
    sha256: str
    size: int
    rows: int
    columns: int
    dvc_file: str  # this and cache_path relative to the state dir (Settings.relative): a copy stays whole
    cache_path: str
    source: str
    taken_at: str

    def to_dict(self) -> dict:
        return asdict(self)


def snapshot_frame(settings: Settings, model: str, frame: pd.DataFrame, source: str) -> Snapshot:
    """Write a generated frame as Parquet and version it."""
    target = _workdir(settings, model) / "applications.parquet"
    with _repo_lock(settings):
        frame.to_parquet(target, index=False)
        return _track(settings, model, target, rows=len(frame), columns=frame.shape[1], source=source)


def snapshot_file(settings: Settings, model: str, path: Path, frame: pd.DataFrame) -> Snapshot:
    """Version a source file byte for byte (its md5 is the source file's md5)."""
    target = _workdir(settings, model) / f"applications{path.suffix.lower()}"
    with _repo_lock(settings):
        shutil.copyfile(path, target)
        return _track(settings, model, target, rows=len(frame), columns=frame.shape[1], source=str(path))


def cached_path(settings: Settings, md5: str) -> Path:
    """The immutable, content-addressed copy of a snapshot in the DVC cache."""
    path = settings.dvc_repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    if not path.is_file():
        raise GovernanceError(f"data snapshot md5 {md5} is not in the DVC cache at {path}")
    return path


def ensure_repo(settings: Settings) -> None:
    """Create the DVC repository and its local remote once (idempotent, offline)."""
    from dvc.repo import Repo

    if (settings.dvc_repo / ".dvc").is_dir():
        return
    logging.getLogger("dvc").setLevel(logging.WARNING)  # "Initialized DVC repository." is not news
    settings.dvc_repo.mkdir(parents=True, exist_ok=True)
    settings.dvc_remote.mkdir(parents=True, exist_ok=True)
    repo = Repo.init(str(settings.dvc_repo), no_scm=True)
    with repo.config.edit() as conf:
        conf["core"]["analytics"] = False
    _own_remote(repo, settings)
    repo.close()


def _own_remote(repo, settings: Settings) -> None:
    """Make the repository's default remote the state dir's own `dvc-remote`, by a path relative to the config (a
    copied, restored or moved state dir pushes into itself); rewrites one an older state dir keeps as an absolute
    path, which would push into the original from a copy."""
    from dvc.config_schema import RelPath  # DVC's marker for a path it stores relative to its config file

    url = repo.config["remote"].get("local", {}).get("url")
    if isinstance(url, RelPath) and url == str(settings.dvc_remote) and repo.config["core"].get("remote") == "local":
        return
    with repo.config.edit() as conf:
        conf["core"]["remote"] = "local"
        conf["remote"]["local"] = {"url": RelPath(str(settings.dvc_remote))}


def _workdir(settings: Settings, model: str) -> Path:
    ensure_repo(settings)
    path = settings.dvc_repo / model
    path.mkdir(parents=True, exist_ok=True)
    return path


def _repo_lock(settings: Settings) -> FileLock:
    """DVC refuses a second concurrent command on one repo, and models snapshot in parallel runs."""
    return FileLock(settings.dvc_repo / ".dvc" / "tmp" / "govern.lock")


def _track(settings: Settings, model: str, target: Path, *, rows: int, columns: int, source: str) -> Snapshot:
    from dvc.repo import Repo

    with Repo(str(settings.dvc_repo)) as repo:
        _own_remote(repo, settings)
        repo.add(str(target))
        repo.push()
    dvc_file = target.with_name(target.name + ".dvc")
    out = yaml.safe_load(dvc_file.read_text())["outs"][0]
    return Snapshot(
        model=model,
        md5=out["md5"],
        sha256=file_sha256(target),
        size=int(out["size"]),
        rows=rows,
        columns=columns,
        dvc_file=settings.relative(dvc_file),
        cache_path=settings.relative(cached_path(settings, out["md5"])),
        source=source,
        taken_at=utc_timestamp(),
    )
