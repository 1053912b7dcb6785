"""The champion alias read straight from MLflow's database (what `govern status` and serving's cache checks do,
without importing MLflow) is the alias MLflow's own client reads, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from governance.registry import CHAMPION, ModelRegistry
from tests.conftest import REPO
from tests.lineage.conftest import copy_of
from tests.lineage.world import MODEL


def test_the_champion_alias_read_from_mlflows_database_is_mlflows_own(any_world, tmp_path):
    settings = copy_of(any_world, tmp_path / "govern")
    registry = ModelRegistry.for_settings(settings)
    for version in (2, 1):
        registry.set_champion(MODEL, version)
        assert registry.champion(MODEL) == version
        assert int(registry.client.get_model_version_by_alias(MODEL, CHAMPION).version) == version
    registry.client.delete_registered_model_alias(MODEL, CHAMPION)
    assert registry.champion(MODEL) is None
    assert registry.champion("no_such_model") is None


def test_status_imports_no_mlflow(any_world, tmp_path):
    """`govern status` reads the alias without MLflow (importing it and opening its store take about 4 s)."""
    settings = copy_of(any_world, tmp_path / "govern")
    probe = (
        "import sys\nfrom programs.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('MLFLOW_IMPORTED' if 'mlflow' in sys.modules else 'MLFLOW_NOT_IMPORTED', file=sys.stderr)\n"
    )
    env = {
        **os.environ,
        "GOVERN_HOME": str(settings.home),
        "GOVERN_CONFIG": str(settings.config_path),
        "GOVERN_POLICIES": str(settings.policies_dir),
        "GOVERN_DATABASE_URL": settings.database_url or "",
        "GOVERN_ROSTER": str(settings.roster_override or ""),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe, "status", "--json"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.stderr.strip().endswith("MLFLOW_NOT_IMPORTED"), done.stderr[-2000:]
    assert json.loads(done.stdout)[0]["champion"] == 1
