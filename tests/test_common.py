"""The helpers every model's assets share, and the speed tricks (speedups) a run process applies."""

import importlib
import os
import subprocess
import sys
import threading

import pytest

from governance.state import prepare
from speedups import importing_meanwhile


def test_importing_meanwhile_has_imported_when_the_block_ends_and_leaves_failures_to_the_real_import(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)  # put back afterwards
    with importing_meanwhile("no_such_module_for_the_test", "colorsys"):
        pass
    assert "colorsys" in sys.modules  # imported after the failing name, and waited for
    assert not any(t.name == "importing-meanwhile" for t in threading.enumerate())
    with pytest.raises(ModuleNotFoundError, match="no_such_module_for_the_test"):
        importlib.import_module("no_such_module_for_the_test")


def test_loading_the_code_location_keeps_its_imports_out_of_collections(settings):
    prepare(settings)  # the code location loads on a state dir that exists
    env = {**os.environ, "GOVERN_HOME": str(settings.home), "GOVERN_CONFIG": str(settings.config_path)}
    probe = "import gc; from definitions import defs; defs(); print(gc.get_freeze_count(), gc.get_threshold()[0])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout
    frozen, threshold = map(int, out.split()[-2:])  # a fresh process, as a run worker loads it
    assert frozen > 10_000 and threshold == 10_000
