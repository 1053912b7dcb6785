"""Reading a DVC snapshot back: by its md5, checked on every read, parsed once per process."""

import os

import pandas as pd
import pytest

from governance.config import load_config
from governance.data import snapshot
from governance.data.generator import generate_applications
from governance.data.source import DataError, read_snapshot
from tests.helpers import SMALL_CONFIG


@pytest.fixture
def taken(settings):
    frame = generate_applications(2_000, seed=3)
    return frame, snapshot.snapshot_frame(settings, "credit_scoring", frame, "generator(test)")


def test_a_snapshot_reads_back_as_it_was_taken(settings, taken):
    frame, snap = taken
    model = load_config(SMALL_CONFIG).model("credit_scoring")
    first = read_snapshot(settings, model, snap.md5)
    pd.testing.assert_frame_equal(first, frame)
    first["added_by_a_caller"] = 1  # a caller's own columns stay its own
    first["sex"] = "X"
    second = read_snapshot(settings, model, snap.md5)
    pd.testing.assert_frame_equal(second, frame)


def test_a_snapshot_changed_in_the_cache_is_refused_even_after_it_was_read(settings, taken):
    _, snap = taken
    model = load_config(SMALL_CONFIG).model("credit_scoring")
    read_snapshot(settings, model, snap.md5)  # parsed and kept
    cached = snapshot.cached_path(settings, snap.md5)
    os.chmod(cached, 0o644)  # DVC leaves its cache read-only
    cached.write_bytes(cached.read_bytes()[:-1] + b"\0")
    with pytest.raises(DataError, match=f"{cached}: data snapshot {snap.md5} changed on disk"):
        read_snapshot(settings, model, snap.md5)
