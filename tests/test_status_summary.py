"""`govern status --summary`: one line a model, for a person looking at many."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from programs.cli import app
from tests.helpers import REPO, small_model, write_config

MODELS = [f"model_{i:02d}" for i in range(20)]


def test_the_summary_is_one_line_a_model_and_json_lists_every_model(tmp_path):
    config = write_config(tmp_path / "governance.yaml", {name: small_model() for name in MODELS})
    runner = CliRunner(env={"GOVERN_POLICIES": str(REPO / "policies")})
    base = ["--home", str(tmp_path / "govern"), "--config", str(config), "status"]
    assert runner.invoke(app, [*base[:-1], "init"]).exit_code == 0
    summary = runner.invoke(app, [*base, "--summary"])
    assert summary.exit_code == 0, summary.output
    lines = summary.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == MODELS
    assert all("high" in line and "no champion" in line and "0 versions" in line for line in lines)
    as_json = runner.invoke(app, [*base, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert [model["model"] for model in json.loads(as_json.stdout)] == MODELS
