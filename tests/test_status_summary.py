"""`govern status --summary`: one line a model, for a person looking at many."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from governance.settings import Settings
from governance.trust.demo import demo_principals
from programs.cli import app
from tests.helpers import REPO, small_model, travel, write_config

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


def test_status_warns_of_a_business_owner_the_roster_cannot_stand_behind(tmp_path):
    owners = {"team": "consumer-credit-risk", "data_scientists": ["dana"]}
    models = {
        "owned": small_model(owners={**owners, "business_owner": "bea"}),
        "unknown_owner": small_model(owners={**owners, "business_owner": "zoe"}),
        "owner_without_role": small_model(owners={**owners, "business_owner": "ravi"}),
    }
    config = write_config(tmp_path / "governance.yaml", models)
    runner = CliRunner(env={"GOVERN_POLICIES": str(REPO / "policies")})
    base = ["--home", str(tmp_path / "govern"), "--config", str(config)]
    assert runner.invoke(app, [*base, "init"]).exit_code == 0
    demo_principals(Settings(home=tmp_path / "govern", config_path=config, policies_override=REPO / "policies"))
    found = runner.invoke(app, [*base, "status", "--json"])
    assert found.exit_code == 0, found.output
    owned, unknown, without_role = (
        [w for w in model["trust"] if w.startswith("business owner")] for model in json.loads(found.stdout)
    )
    assert owned == []
    assert unknown == [
        "business owner zoe is not in the roster: nobody can switch unknown_owner back on after the kill switch, "
        "nor approve its medium- and low-risk versions (`govern roster add zoe --role business_owner "
        "--public-key FILE`, or name another owner in the config)"
    ]
    assert "ravi has no business_owner role in the roster (roles: model_risk_approver)" in without_role[0]
    text = runner.invoke(app, [*base, "status"])
    assert "WARNING: business owner zoe is not in the roster" in text.stdout


def test_status_warns_until_a_signed_checkpoint_of_the_ledger_is_taken_and_a_day_after_the_newest(
    tmp_path, monkeypatch
):
    """A deleted tail of the ledger shows only against a signed checkpoint kept outside the database: status says
    when none was taken, or none for a day."""
    config = write_config(tmp_path / "governance.yaml", {"owned": small_model()})
    runner = CliRunner(env={"GOVERN_POLICIES": str(REPO / "policies")})
    base = ["--home", str(tmp_path / "govern"), "--config", str(config)]
    assert runner.invoke(app, [*base, "init"]).exit_code == 0
    demo_principals(Settings(home=tmp_path / "govern", config_path=config, policies_override=REPO / "policies"))

    def warned() -> list[str]:
        found = runner.invoke(app, [*base, "status", "--json"])
        assert found.exit_code == 0, found.output
        return [w for w in json.loads(found.stdout)[0]["trust"] if "checkpoint" in w]

    assert warned() == []  # an empty ledger has nothing to prove
    switched = runner.invoke(app, [*base, "disable", "owned", "--as", "bea", "--reason", "complaints spike"])
    assert switched.exit_code == 0, switched.output
    (never,) = warned()
    assert never.startswith("no signed checkpoint of the ledger was ever taken: entries deleted from the ledger's")
    taken = runner.invoke(app, [*base, "ledger", "checkpoint", "--out", str(tmp_path / "checkpoint.json")])
    assert taken.exit_code == 0, taken.output
    assert warned() == []
    travel(monkeypatch, timedelta(hours=26))
    (stale,) = warned()
    assert "the newest signed checkpoint of the ledger was taken at" in stale and "over 25 hours ago" in stale
    text = runner.invoke(app, [*base, "status"])
    assert "WARNING: the newest signed checkpoint of the ledger was taken at" in text.stdout
