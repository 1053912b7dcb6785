"""The attack suite's state: copies of the lineage world (tests/lineage/world.py, built once per backend for the
session in tests/conftest.py), and of that world with two candidates awaiting approval (built once per backend
from a copy of it). Every test attacks its own copy, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance.release.approvals import latest_request
from governance.release.requests import request_candidate, requesters
from jobs.candidates import next_candidate_key
from tests.attacks.support import V3, V4, Pending, key_of
from tests.helpers import Lifecycle
from tests.lineage.conftest import copy_of
from tests.lineage.world import MODEL, World


@pytest.fixture
def attacked(any_world: World, tmp_path: Path):
    """Settings of a copy of the history, on each backend, for an insider who can write its databases and state
    dir."""
    return copy_of(any_world, tmp_path / "govern")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def pending_world(request, tmp_path_factory) -> World:
    """The lineage world's copy with v3 (signed request by dana) and v4 (launched untagged but for a run tag naming
    paul) trained, gated and awaiting approval; built once per backend."""
    base = request.getfixturevalue("world" if request.param == "sqlite" else "pg_world")
    life = Lifecycle.of(copy_of(base, tmp_path_factory.mktemp(f"pending-{request.param}") / "govern"))
    pending = Pending(life)
    for version, tags in ((V3, None), (V4, {"governance/requested_by": "paul"})):  # a tag is no request
        assert next_candidate_key(life.instance, life.registry, life.config.model(MODEL)) == version
        if tags is None:  # as `govern train` signs it
            request_candidate(pending.services, MODEL, version, "dana", key_of(life.settings, "dana"))
        result = pending.candidate(version, tags)
        assert result.success
        assert latest_request(pending.services, MODEL, version) is not None, f"{version} did not pass its gate"
    assert requesters(pending.services, MODEL, V3).verified == ("dana",)
    assert requesters(pending.services, MODEL, V4).verified == ()
    return World(life)


@pytest.fixture
def pending(pending_world: World, tmp_path: Path) -> Pending:
    """A copy of the pending world to attack."""
    return Pending(Lifecycle.of(copy_of(pending_world, tmp_path / "govern")))
