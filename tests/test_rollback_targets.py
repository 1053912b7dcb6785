"""Which version a plain `rollback` returns to, how `govern status` reports the move, and what a move on an
ungoverned model does (nothing)."""

import json
from dataclasses import replace

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from governance import events
from governance.config import ConfigError
from governance.release.deployment import DeploymentRefused, deploy, rollback
from governance.release.kill_switch import set_kill_switch
from governance.release.services import Services
from governance.settings import Settings
from governance.trust.demo import demo_principals
from governance.trust.keys import load_private_key
from programs.cli import app
from tests.helpers import REPO, register_version, sealed_approval

pytestmark = pytest.mark.slow
MODEL = "credit_scoring"


@pytest.fixture
def services(tmp_path) -> Services:
    """v1, v2, v3 deployed in turn (v3 is the champion)."""
    settings = Settings(home=tmp_path / "govern", config_path=REPO / "governance.yaml")
    demo_principals(settings)
    services = Services(settings)
    for seed in (1, 2, 3):
        registered = register_version(settings, seed=seed)
        deploy(services, *sealed_approval(settings, registered.version), actor="system:production_deployment")
    return services


def _key(services: Services, name: str):
    return load_private_key(services.settings.keys_dir / f"{name}.key")


def test_a_plain_rollback_never_returns_to_a_version_rolled_back_from(services):
    paul = _key(services, "paul")
    assert rollback(services, MODEL, "paul", paul, "v3 under investigation").version == 2
    # The move before v2 in history is v3, the version just rolled away from: the default passes over it.
    assert rollback(services, MODEL, "paul", paul, "v2 also suspect").version == 1
    with pytest.raises(DeploymentRefused, match="no earlier approved version"):
        rollback(services, MODEL, "paul", paul, "and again")
    # Naming a rolled-back version is a deliberate choice, and allowed (it was approved).
    assert rollback(services, MODEL, "paul", paul, "v3 cleared", to_version=3).version == 3
    assert services.registry.champion(MODEL) == 3


def test_an_altered_ledger_entry_does_not_stop_a_rollback(services):
    """Ledger reads refuse an entry that no longer hashes to the chain; the bookkeeping a rollback does first
    must not, or one edited row would stop containment (verify names the row)."""
    ledger = services.ledger
    altered = next(e for e in ledger.entries(model=MODEL, action=events.DeploymentCompleted.action) if e.payload)
    with ledger.engine.begin() as conn:
        conn.execute(
            text("UPDATE ledger_entries SET payload = :p WHERE seq = :s"),
            {"p": json.dumps({**altered.payload, "edited": True}).encode(), "s": altered.seq},
        )
    assert rollback(services, MODEL, "paul", _key(services, "paul"), "v3 suspect").version == 2
    assert services.registry.champion(MODEL) == 2
    assert ledger.verify().first_bad_seq == altered.seq


def test_cedar_decides_who_deploys_and_that_a_person_approved(services):
    registered = register_version(services.settings, seed=4)
    approval, pack = sealed_approval(services.settings, registered.version)
    by_automation = replace(approval, principal="system", roles=("automation",))
    with pytest.raises(DeploymentRefused, match="Nothing is deployed without a valid approval signed by a person"):
        deploy(services, by_automation, pack, actor="system:production_deployment")
    with pytest.raises(DeploymentRefused, match="no rule permits audrey"):
        deploy(services, approval, pack, actor="audrey")
    assert services.registry.champion(MODEL) == 3
    assert deploy(services, approval, pack, actor="system:production_deployment").version == registered.version


def test_status_says_which_move_set_the_champion_and_who_made_it(services):
    assert "champion v3 (deployed by system:production_deployment at " in _status(services)
    rollback(services, MODEL, "paul", _key(services, "paul"), "v3 under investigation")
    move = json.loads(_status(services, "--json"))[0]["last_move"]
    assert (move["kind"], move["version"], move["previous_version"], move["by"]) == ("rollback", 2, 3, "paul")
    assert f"champion v2 (rolled back from v3 by paul at {move['at']}); serving" in _status(services)
    services.registry.set_champion(MODEL, 1)  # the alias moved outside governance: a cache, not the champion
    shown = _status(services, exit_code=1)
    assert f"champion v2 (rolled back from v3 by paul at {move['at']})" in shown
    assert (
        "INCIDENT: the MLflow champion alias points at credit_scoring-v1, but the verified champion is "
        "credit_scoring-v2"
    ) in shown


def test_moves_on_a_model_that_is_not_governed_are_refused_and_change_nothing(services):
    before = services.ledger.size()
    with pytest.raises(ConfigError, match="unknown model 'nosuch' \\(governed models: credit_scoring\\)"):
        set_kill_switch(services, "nosuch", True, "bea", _key(services, "bea"), "typo")
    with pytest.raises(ConfigError, match="unknown model 'nosuch'"):
        rollback(services, "nosuch", "paul", _key(services, "paul"), "typo")
    assert services.ledger.size() == before
    assert services.control.kill_switch("nosuch").disabled is False


def _status(services: Services, *options: str, exit_code: int = 0) -> str:
    settings = services.settings
    result = CliRunner().invoke(
        app, ["--home", str(settings.home), "--config", str(settings.config_path), "status", *options]
    )
    assert result.exit_code == exit_code, result.output
    return result.output
