"""Files kept beside the databases (evidence packs, reports) in the object store, by state-dir-relative keys.

Production sets `GOVERN_OBJECT_STORE=s3://bucket/prefix` (any S3-compatible server; endpoint and credentials
from boto3's own variables, e.g. `AWS_ENDPOINT_URL`). A file the governance process writes into its state dir
is then published under the same relative key in the bucket, and a file it needs and does not find in its state
dir is fetched from there. Keys name no machine's path, so a restored bucket serves a state dir anywhere.
Nothing fetched is trusted more than a local copy: packs are verified against their sealed digest and models
against their approved artifact digest where they are used. The embedded default has no object store: the
state dir is the store.

The transfers are MLflow's artifact repositories (its S3 one uses boto3), the same code that moves the models.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from governance.errors import GovernanceError
from governance.settings import Settings


class ObjectStoreError(GovernanceError):
    """The object store could not take or give back a file; the message names the key."""


def repository(uri: str):
    """MLflow's artifact repository for a URI (`file:`, `s3:`)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(uri)


def publish(settings: Settings, path: Path) -> None:
    """Copy a file or directory of the state dir to the object store under its relative key."""
    if settings.object_store_url is None:
        return
    key = settings.relative(path)
    try:
        if path.is_dir():
            repository(f"{settings.object_store_url}/{key}").log_artifacts(str(path))
        else:
            parent = key.rpartition("/")[0]
            repository(f"{settings.object_store_url}/{parent}".rstrip("/")).log_artifact(str(path))
    except Exception as exc:  # boto3 and MLflow raise many kinds; the caller needs one
        raise ObjectStoreError(f"{key}: could not be published to the object store ({type(exc).__name__})") from exc


def for_reading(settings: Settings) -> Settings:
    """These settings for a process that only reads: what it fetches lands in a temporary directory of its own,
    removed when it exits, never in the state dir (a GET, a lineage or a trace writes nothing there)."""
    if settings.object_store_url is None or settings.fetch_cache is not None:
        return settings
    cache = Path(tempfile.mkdtemp(prefix="govern-fetched-"))
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    return replace(settings, fetch_cache=cache)


def fetched(settings: Settings, path: Path) -> Path:
    """`path` in the state dir, fetched from the object store first if this state dir has no copy of it (into
    `settings.fetch_cache` instead, for a process that only reads).

    A fetch lands under a temporary name and is renamed into place, so a failed one leaves nothing behind;
    a key the store does not hold leaves the path returned missing, for the caller to report as missing."""
    if settings.object_store_url is None or path.exists():
        return path
    key = settings.relative(path)
    if settings.fetch_cache is not None:
        path = settings.fetch_cache / key
        if path.exists():
            return path
    parent_key, _, name = key.rpartition("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetching-", dir=path.parent))
    try:
        folder = repository(f"{settings.object_store_url}/{parent_key}".rstrip("/"))
        if any(entry.path.rpartition("/")[2] == name for entry in folder.list_artifacts()):
            folder.download_artifacts(name, dst_path=str(staging))
            (staging / name).rename(path)
    except FileExistsError:
        pass  # another process fetched it meanwhile
    except OSError:
        raise
    except Exception as exc:
        raise ObjectStoreError(f"{key}: could not be fetched from the object store ({type(exc).__name__})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def sealed_pack_dir(settings: Settings, model: str, version: str, digest: str) -> Path:
    """The directory of a sealed evidence pack, fetched from the object store if this state dir lacks it."""
    return fetched(settings, settings.evidence_pack_dir(model, version, digest))
