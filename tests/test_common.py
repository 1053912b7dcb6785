"""The helpers every model's assets share."""

import gc
import importlib
import sys
import threading

import pytest

from governance_assets.common import importing_meanwhile


def test_importing_meanwhile_has_imported_when_the_block_ends_and_leaves_failures_to_the_real_import(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)  # put back afterwards
    with importing_meanwhile("no_such_module_for_the_test", "colorsys"):
        pass
    assert "colorsys" in sys.modules  # imported after the failing name, and waited for
    assert not any(t.name == "importing-meanwhile" for t in threading.enumerate())
    with pytest.raises(ModuleNotFoundError, match="no_such_module_for_the_test"):
        importlib.import_module("no_such_module_for_the_test")


def test_loading_the_code_location_keeps_its_imports_out_of_collections():
    import governance_assets.definitions  # noqa: F401  (what a run process loads first)

    assert gc.get_freeze_count() > 100_000
    assert gc.get_threshold()[0] >= 10_000
