"""Killing the deployment process at each step leaves a consistent registry and ledger.

The champion is v1; a child process deploys v2 and is killed (os._exit) at one
step of the move. Afterwards `reconcile` must settle the move so that the
champion alias is v1 or v2, never anything else, the control store's last
completed move names the champion, the ledger records the same outcome, and
the ledger still verifies.
"""

import shutil
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest

from governance import events
from governance.release.deployment import _move, deploy, reconcile
from governance.release.production import verified_production
from governance.release.services import Services
from governance.settings import Settings
from governance.timestamps import utc_now, utc_timestamp
from governance.trust.demo import demo_principals
from tests.helpers import REPO, register_version, sealed_approval, travel

pytestmark = pytest.mark.slow
MODEL = "credit_scoring"

CRASH_POINTS = {
    "before the ledger records the start": """
        original = Ledger.append
        def append(self, event):
            if isinstance(event, events.DeploymentStarted):
                os._exit(9)
            return original(self, event)
        Ledger.append = append""",
    "before the alias moves": """
        ModelRegistry.set_champion = lambda self, model, version: os._exit(9)""",
    "after the alias moved": """
        original = ModelRegistry.set_champion
        def set_champion(self, model, version):
            original(self, model, version)
            os._exit(9)
        ModelRegistry.set_champion = set_champion""",
    "after the control store completed it": """
        original = Ledger.append
        def append(self, event):
            if isinstance(event, events.DeploymentCompleted):
                os._exit(9)
            return original(self, event)
        Ledger.append = append""",
}


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """v1 deployed as champion, v2 registered and approved: the state every crash starts from."""
    settings = Settings(home=tmp_path_factory.mktemp("golden") / "govern", config_path=REPO / "governance.yaml")
    demo_principals(settings)
    register_version(settings, seed=1)
    register_version(settings, seed=2)
    deploy(Services(settings), *sealed_approval(settings, 1), actor="system:production_deployment")
    return settings


def _child(settings: Settings, patch: str) -> int:
    script = (
        textwrap.dedent("""
        import os, sys
        from pathlib import Path
        from governance import events
        from governance.ledger import Ledger
        from governance.registry import ModelRegistry
        from governance.settings import Settings
        from governance.release.deployment import deploy
        from governance.release.services import Services
        from tests.helpers import sealed_approval
        settings = Settings(home=Path(sys.argv[1]), config_path=Path(sys.argv[2]))
    """)
        + textwrap.dedent(patch)
        + textwrap.dedent("""
        deploy(Services(settings), *sealed_approval(settings, 2), actor="system:production_deployment")
    """)
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(settings.home), str(settings.config_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    ).returncode


@pytest.mark.parametrize("point", list(CRASH_POINTS) + ["no crash"])
def test_a_crash_at_any_step_leaves_old_or_new_champion_and_an_agreeing_ledger(point, golden, tmp_path):
    home = tmp_path / "govern"
    shutil.copytree(golden.home, home)
    settings = Settings(home=home, config_path=golden.config_path)
    code = _child(settings, CRASH_POINTS.get(point, ""))
    assert code == (0 if point == "no crash" else 9)

    services = Services(settings)
    reconcile(services, MODEL)
    champion = services.registry.champion(MODEL)
    assert champion in (1, 2)
    moves = services.control.deployments(MODEL)
    assert all(m.status in ("completed", "aborted") for m in moves)
    assert [m for m in moves if m.status == "completed"][-1].version == champion
    terminal = services.ledger.events((events.DeploymentCompleted, events.DeploymentAborted), model=MODEL)
    assert terminal[-1].version == f"{MODEL}-v{moves[-1].version}" and terminal[-1].deployment_id == moves[-1].id
    assert type(terminal[-1]) is events.move_step("deploy", moves[-1].status)
    completed_in_ledger = [e for e in terminal if isinstance(e, events.DeploymentCompleted)]
    assert completed_in_ledger[-1].version == f"{MODEL}-v{champion}"
    starts = services.ledger.events(events.DeploymentStarted, model=MODEL)
    assert len(starts) == len(moves)
    assert (
        services.control.deployed_artifact(MODEL, champion)
        == services.registry.version(MODEL, champion).artifact_sha256
    )
    assert services.ledger.verify().ok
    assert not reconcile(services, MODEL)  # settled once, stays settled
    expected = {"before the ledger records the start": 1, "before the alias moves": 1}.get(point, 2)
    assert champion == expected


def test_a_move_recovered_after_its_approval_expired_is_aborted_not_completed(golden, tmp_path, monkeypatch):
    """The deployment of v2 dies after the alias moved; recovery runs eight days later, when ravi's approval (valid
    for seven) has lapsed. Production judges a move at its completion, so recovery does too: it aborts the move
    instead of completing one that would not verify, and v1 stays the verified champion."""
    home = tmp_path / "govern"
    shutil.copytree(golden.home, home)
    settings = Settings(home=home, config_path=golden.config_path)
    assert _child(settings, CRASH_POINTS["after the alias moved"]) == 9
    travel(monkeypatch, timedelta(days=8))
    services = Services(settings)
    [settled] = reconcile(services, MODEL)
    assert (settled.version, settled.status) == (2, "aborted")
    production = verified_production(services, MODEL)
    assert production.champion == 1, production.incidents


def test_a_move_completed_after_the_waiver_its_gate_passed_on_ended_does_not_verify(golden, tmp_path, monkeypatch):
    """v2's gate passed on a waiver that ends in an hour, and ravi approved it. Two hours later the release would
    be refused; an insider runs the project's own move with the approval anyway: the move does not verify (the
    waiver had ended when it completed), so v1's deployment is not replaced by a verified one."""
    home = tmp_path / "govern"
    shutil.copytree(golden.home, home)
    settings = Settings(home=home, config_path=golden.config_path)
    approval, pack = sealed_approval(settings, 2, waived_until=utc_timestamp(utc_now() + timedelta(hours=1)))
    travel(monkeypatch, timedelta(hours=2))
    services = Services(settings)
    registered = services.registry.version(MODEL, 2)
    _move(
        services,
        MODEL,
        2,
        kind="deploy",
        actor="system:production_deployment",
        artifact_sha256=registered.artifact_sha256,
        evidence_digest=pack.digest,
        approval_digest=approval.statement_digest,
    )
    production = verified_production(services, MODEL)
    assert production.champion is None
    assert any("the gate passed on a waiver that ended at" in i for i in production.incidents), production.incidents
