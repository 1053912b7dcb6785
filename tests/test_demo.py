"""The demo narrates a gate that stops a candidate its story needs, instead of failing further on."""

import functools

import pytest
import sqlalchemy
from typer.testing import CliRunner

from governance.config import load_config
from governance.errors import GovernanceError
from governance.policy.gate import describe_finding
from governance.settings import PRODUCTION_VARIABLES, Settings
from programs.cli import app
from programs.demo import BIASED, Demo
from programs.lifecycle import _where_to_look
from tests.helpers import REPO, SMALL_CONFIG


def test_a_candidate_stopped_at_its_gate_is_explained_and_ends_the_story(tmp_path):
    settings = Settings(home=tmp_path / "state", config_path=SMALL_CONFIG, policies_override=REPO / "policies")
    config = load_config(SMALL_CONFIG)
    said: list[str] = []
    demo = Demo(settings, config, config.model("credit_scoring"), said.append)
    key, result = demo.candidate(BIASED)  # historically biased data: the fairness rules deny it
    with pytest.raises(GovernanceError, match=f"{key}: the biased candidate did not reach its approval request"):
        demo.pending_approval(key, result, "biased candidate")
    assert said[0] == f"   {key}: release gate DENIED (policy {demo.gate(key)['policy_digest'][:12]})"
    assert any("fairness.disparate_impact" in line and "requires di_ci_high_min >= 0.8000" in line for line in said[1:])
    demo.instance.dispose()


def test_a_finding_of_any_kind_is_narrated():
    """Gate findings measure figures, flags, lists and the infinite ratio JSON keeps as a string."""
    _finding = functools.partial(describe_finding, digits=4)  # as the demo narrates them
    assert (
        _finding({"attribute": "auc", "measured": 0.71234, "requirement": ">= 0.7", "detail": "test set"})
        == "auc = 0.7123, requires >= 0.7 (test set)"
    )
    assert (
        _finding({"attribute": "validation_passed", "measured": False, "requirement": "== true"})
        == "validation_passed = false, requires == true"
    )
    assert (
        _finding({"attribute": "trained_by", "measured": ["dana"], "requirement": "not empty", "detail": ""})
        == 'trained_by = ["dana"], requires not empty'
    )
    assert (
        _finding({"attribute": "di", "measured": "inf", "requirement": "<= 1.25", "detail": None})
        == 'di = "inf", requires <= 1.25'
    )


def test_the_demo_says_where_the_console_is(tmp_path):
    settings = Settings(home=tmp_path / "state", config_path=SMALL_CONFIG)
    said = _where_to_look(settings, {"card": "model_card.html", "evidence_pack": "pack", "evidence_archive": "a.zip"})
    assert "  the console            make ui, then http://127.0.0.1:8000/console/ (models, lineage" in said


@pytest.mark.parametrize(
    "variable",
    list(PRODUCTION_VARIABLES.values()),
)
def test_the_demo_refuses_production_stores_before_writing_anything(tmp_path, empty_postgres_url, variable):
    postgres_url = empty_postgres_url
    value = {"GOVERN_OBJECT_STORE": "s3://production-bucket"}.get(variable) or (
        postgres_url if variable.endswith(("_URL", "_URI")) else str(tmp_path / "prod.file")
    )
    home = tmp_path / "state"
    result = CliRunner().invoke(
        app,
        ["--home", str(home), "--config", str(SMALL_CONFIG), "demo"],
        env={variable: value, "GOVERN_POLICIES": str(REPO / "policies")},
    )
    said = str(result.exception) + result.output
    assert result.exit_code != 0
    assert f"govern demo runs on the embedded default only, and {variable} is set" in said
    assert "nothing was written" in said
    assert not home.exists()  # no keys, no roster, no ledger, no Dagster instance, no MLflow store
    database = sqlalchemy.create_engine(postgres_url)
    try:
        assert sqlalchemy.inspect(database).get_table_names() == []  # no ledger, MLflow or Dagster table
    finally:
        database.dispose()
