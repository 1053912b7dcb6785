"""`govern policy check` and `govern waive`, through Typer with a real state dir."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import typer
from typer.testing import CliRunner

from governance.cli import policy
from governance.ledger import Ledger
from governance.policy.bundle import PolicyBundle, PolicyError
from governance.policy.gate import evaluate_gate
from governance.policy.records import record_gate_decision
from governance.policy.waivers import WaiverRefused
from tests.helpers import REPO

from .conftest import POLICIES, passing_evidence


@pytest.fixture
def govern(settings):
    return _cli(settings)


def _cli(settings):
    """The two commands mounted as the lead's `govern` app mounts them, with `settings` as ctx.obj."""
    app = typer.Typer()

    @app.callback()
    def _global(ctx: typer.Context) -> None:
        ctx.obj = settings

    app.add_typer(policy.app, name="policy")
    app.command("waive")(policy.waive)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(arg) for arg in args])


@pytest.fixture
def gated(cast, settings):
    """A recorded gate decision for credit_scoring-v7 (`waive` takes 7, v7 or the key); the demo roster of `cast` is the one in force."""
    assert settings.roster_path == settings.home / "roster.yaml"
    record_gate_decision(
        Ledger.for_settings(settings),
        evaluate_gate(PolicyBundle.load(POLICIES), passing_evidence(di_ci_high_min=0.7, version="credit_scoring-v7")),
    )


def test_policy_check_prints_digest_and_thresholds(govern):
    result = govern("policy", "check", "--policies", POLICIES)
    assert result.exit_code == 0, result.output
    assert "policies OK" in result.output and "performance.auc_floor" in result.output
    assert "high: auc >= 0.7000" in result.output
    data = json.loads(govern("policy", "check", "--policies", POLICIES, "--json").output)
    assert data["digest"] == PolicyBundle.load(POLICIES).digest
    rule = next(r for r in data["gate_rules"] if r["id"] == "data_quality.validation_passed")
    assert rule["unwaivable"] and rule["thresholds"] == [
        {"tier": "every tier", "requirement": "validation_passed is true"}
    ]


def test_policy_check_fails_on_a_broken_file(govern, policy_copy):
    (policy_copy / "documentation.cedar").write_text("forbid (principal, action, resource)\n")
    result = govern("policy", "check", "--policies", policy_copy)
    assert isinstance(result.exception, PolicyError)
    assert f"{policy_copy / 'documentation.cedar'}:1:" in str(result.exception)


def test_waive_grants_a_signed_waiver(govern, gated):
    last_day = (datetime.now(UTC) + timedelta(days=20)).date()
    result = govern(
        "waive",
        "credit_scoring",
        "7",
        "--rule",
        "fairness.disparate_impact",
        "--until",
        last_day,
        "--reason",
        "remediation plan agreed",
        "--as",
        "carl",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["granted_by"] == "carl" and data["rule"] == "fairness.disparate_impact"
    assert data["until"] == f"{last_day + timedelta(days=1)}T00:00:00.000000Z"  # through the last day, UTC
    # what to do next: run the gate again, which honours the waiver (headless, on the state dir's instance)
    assert "--select 'credit_scoring/release_gate,credit_scoring/approval_request'" in data["next"]
    assert (
        "--partition credit_scoring-v7" in data["next"] and "dagster asset materialize -m definitions" in data["next"]
    )


def test_waive_judges_the_version_under_the_risk_tier_the_gate_will(govern, settings, cast):
    """The gate honours a waiver under the model's configured tier (high), even where the recorded gate
    decision judged the version as medium: a 45-day waiver, allowed for medium, is refused up front."""
    record_gate_decision(
        Ledger.for_settings(settings),
        evaluate_gate(
            PolicyBundle.load(POLICIES),
            passing_evidence(di_ci_high_min=0.7, version="credit_scoring-v7", risk_tier="medium"),
        ),
    )
    result = govern(
        "waive",
        "credit_scoring",
        "7",
        "--rule",
        "fairness.disparate_impact",
        "--until",
        date.today() + timedelta(days=45),
        "--reason",
        "remediation plan agreed",
        "--as",
        "carl",
    )
    assert isinstance(result.exception, WaiverRefused) and "at most 30 days" in str(result.exception)
    ungoverned = govern(
        "waive",
        "retired_model",
        "7",
        "--rule",
        "fairness.disparate_impact",
        "--until",
        date.today() + timedelta(days=5),
        "--reason",
        "r",
        "--as",
        "carl",
    )
    assert "unknown model 'retired_model' (governed models: credit_scoring)" in str(ungoverned.exception)


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--as", "ravi"], "no rule permits ravi"),
        (["--as", "carl", "--rule", "data_quality.validation_passed"], "marked @unwaivable"),
        (["--as", "carl", "--until", str(date.today() + timedelta(days=60))], "at most 30 days"),
    ],
)
def test_waive_refusals_exit_with_the_reason(govern, gated, args, reason):
    options = {
        "--rule": "fairness.disparate_impact",
        "--until": str(date.today() + timedelta(days=5)),
        "--reason": "because",
    }
    options.update(dict(zip(args[::2], args[1::2])))
    result = govern("waive", "credit_scoring", "7", *[item for pair in options.items() for item in pair])
    assert isinstance(result.exception, WaiverRefused) and reason in str(result.exception)


def test_waive_with_another_principals_key_is_refused(govern, gated, settings):
    result = govern(
        "waive",
        "credit_scoring",
        "7",
        "--rule",
        "fairness.disparate_impact",
        "--until",
        date.today() + timedelta(days=5),
        "--reason",
        "because",
        "--as",
        "carl",
        "--key",
        settings.keys_dir / "cora.key",
    )
    assert isinstance(result.exception, WaiverRefused)
    assert "signature does not verify" in str(result.exception)


@pytest.mark.parametrize(
    "until, message",
    [
        ("2026-02-30", "not a calendar date"),
        ("next week", "expected YYYY-MM-DD"),
        ("2026-12-31T12:00:00", "give the time zone"),
    ],
)
def test_waive_rejects_a_bad_until(govern, gated, until, message):
    result = govern(
        "waive",
        "credit_scoring",
        "7",
        "--rule",
        "fairness.disparate_impact",
        "--until",
        until,
        "--reason",
        "because",
        "--as",
        "carl",
    )
    assert result.exit_code == 2 and message in result.output


def test_waive_judges_the_trainers_the_config_names_not_a_gate_entrys(settings, cast, tmp_path):
    """carl trained the version, as the model's config says; a gate entry naming dana instead (appended by
    anyone who can write the ledger, or left from before the config changed) does not free him to waive."""
    config = tmp_path / "governance.yaml"
    config.write_text(
        (REPO / "governance.yaml").read_text().replace("data_scientists: [dana]", "data_scientists: [carl]")
    )
    (tmp_path / "policies").symlink_to(POLICIES)  # the config names its policies relative to itself
    record_gate_decision(
        Ledger.for_settings(settings),
        evaluate_gate(
            PolicyBundle.load(POLICIES),
            passing_evidence(di_ci_high_min=0.7, version="credit_scoring-v7", trained_by=["dana"]),
        ),
    )
    args = ["waive", "credit_scoring", "7", "--rule", "fairness.disparate_impact", "--reason", "agreed", "--as", "carl"]
    until = ["--until", str(date.today() + timedelta(days=5))]
    result = _cli(replace(settings, config_path=config))(*args, *until)
    assert isinstance(result.exception, WaiverRefused)
    assert "Whoever trained or requested a version may not waive its rules" in str(result.exception)
    assert _cli(settings)(*args, *until).exit_code == 0  # dana trained it, as the repository's config says
