"""A model's risk tier raised in its config after versions were gated under the lower tier: the live champion stays
served and is reported until a gate under the raised tier replaces it; no move (deploy, rollback, recovery) goes to
a version whose gate judged it under the lower tier's thresholds."""

import json

import pytest

from governance import events
from governance.release.approvals import request_approval
from governance.release.deployment import DeploymentRefused, _ledger_step, deploy, reconcile, rollback
from governance.release.production import verified_production
from governance.release.services import Services
from governance.settings import Settings
from governance.trust.demo import demo_principals
from governance.trust.keys import load_private_key
from tests.helpers import REPO, register_version, sealed_approval, small_model, write_config
from tests.lineage.conftest import govern

pytestmark = pytest.mark.slow
MODEL = "credit_scoring"
GATED_BELOW = f"{MODEL}-v2 is served on a gate that judged it as medium risk, but {MODEL}'s risk tier is now high"


def test_a_raised_tier_keeps_the_champion_served_and_reported_and_moves_to_no_version_gated_below_it(tmp_path):
    """v1, v2 and v3 gated and approved at medium, v1 then v2 deployed, then v3's deployment crashed after the
    alias moved; the tier is raised to high before recovery runs. Recovery does not complete v3 (before, it did),
    v2 stays served with an incident status reports (before, nothing said so), and a rollback to v1 is refused."""
    config = write_config(tmp_path / "governance.yaml", {MODEL: small_model(risk_tier="medium")})
    settings = Settings(home=tmp_path / "govern", config_path=config, policies_override=REPO / "policies")
    demo_principals(settings)
    services = Services(settings)
    for seed in (1, 2, 3):
        register_version(settings, seed=seed)
    for version in (1, 2):
        deploy(services, *_approved(settings, version), actor="system:production_deployment")
    approval, pack = _approved(settings, 3)
    crashed = services.control.start_deployment(  # what `deploy` did before the crash: started, alias moved
        model=MODEL,
        version=3,
        kind="deploy",
        artifact_sha256=pack.facts["artifact_sha256"],
        evidence_digest=pack.digest,
        approval_digest=approval.statement_digest,
        previous_version=2,
        actor="system:production_deployment",
    )
    _ledger_step(services, crashed, "started")
    services.registry.set_champion(MODEL, 3)
    assert not any("judged it as medium" in i for i in verified_production(services, MODEL).incidents)

    write_config(config, {MODEL: small_model(risk_tier="high")})
    assert [m.status for m in reconcile(services, MODEL)] == ["aborted"]
    production = verified_production(services, MODEL)
    assert production.champion == 2
    assert any(GATED_BELOW in i for i in production.incidents), production.incidents
    assert services.ledger.events(events.DeploymentAborted, model=MODEL, version=f"{MODEL}-v3")
    ledgered = [i.description for i in services.ledger.events(events.ProductionIncident, model=MODEL)]
    assert any(f"row #{crashed.id}" in i and "risk tier is now high" in i for i in ledgered), ledgered

    shown = govern(settings, "status", "--json")
    assert shown.exit_code == 1, shown.output
    assert any(GATED_BELOW in i for i in json.loads(shown.output)[0]["incidents"]), shown.output
    key = load_private_key(settings.keys_dir / "paul.key")
    with pytest.raises(DeploymentRefused, match="risk tier is now high"):
        rollback(services, MODEL, "paul", key, "v2 suspect", to_version=1)
    assert verified_production(services, MODEL).champion == 2


def _approved(settings: Settings, version: int):
    """A sealed pack of `version` (its gate under the model's tier now), requested for approval as the pipeline's
    approval_request asset does, and ravi's signed approval of it."""
    approval, pack = sealed_approval(settings, version)
    request_approval(Services(settings), pack, ("dana",))
    return approval, pack
