"""The import budget of `govern status --json`: none of the heavy libraries it does not need (importing Dagster and
opening its instance were most of the 3.3 s a status took at one model; bench/status.py). Run as `govern` runs, in a
fresh process that then lists what it imported: on a new state dir, and once Dagster holds versions and their
materializations. Dagster is imported only to say why a version's candidate run failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from governance.settings import Settings
from programs.cli import app
from programs.instance import existing_instance
from tests.helpers import REPO, small_model, write_config
from tests.test_dagster_records import FAILING, record_history

HEAVY = {"dagster", "mlflow", "sklearn", "pandas", "evidently", "shap"}
PROBE = (
    "import json, sys\nfrom programs.cli import main\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})), file=sys.stderr)\n"
)


def _status(settings: Settings) -> tuple[list[dict], set[str]]:
    """`govern status --json`'s answer, and the top-level packages its process imported."""
    options = ["--home", str(settings.home), "--config", str(settings.config_path), "status", "--json"]
    env = {**os.environ, "GOVERN_POLICIES": str(REPO / "policies")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *options], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_status_imports_no_heavy_library_and_dagster_only_to_explain_a_failed_run(tmp_path: Path):
    config = write_config(tmp_path / "governance.yaml", {"model_a": small_model(), "model_b": small_model()})
    settings = Settings(home=tmp_path / "govern", config_path=config, policies_override=REPO / "policies")
    created = CliRunner(env={"GOVERN_POLICIES": str(REPO / "policies")}).invoke(
        app, ["--home", str(settings.home), "--config", str(config), "init"]
    )
    assert created.exit_code == 0, created.output
    found, imported = _status(settings)
    assert [model["versions"] for model in found] == [[], []]
    assert imported & HEAVY == set()

    with existing_instance(settings) as instance:
        record_history(instance, "model_a", ["model_a-v1", "model_a-v2"])
    found, imported = _status(settings)
    assert [version["key"] for version in found[0]["versions"]] == ["model_a-v1", "model_a-v2"]
    assert found[0]["versions"][1]["assets"]["trained_model"]["state"] == "materialized"
    assert found[0]["data"]["applications"]["dvc_md5"] == "d41d8cd98f00b204"
    assert imported & HEAVY == set()

    with existing_instance(settings) as instance:
        record_history(instance, "model_a", [f"model_a{FAILING}"])
    found, imported = _status(settings)
    failed = found[0]["versions"][-1]["failed_run"]
    assert any("ValueError: clients.csv: data file not found" in reason for reason in failed["reasons"])
    assert imported & HEAVY == {"dagster"}
