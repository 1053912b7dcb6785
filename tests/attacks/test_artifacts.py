"""Attacks on what an approval binds: the sealed evidence pack and the model artifact in the MLflow store, and the
MLflow store's descriptive tags.

An approval binds the digest of a sealed evidence pack, which names the artifact's SHA-256. A file of the pack
edited after the approval, or the artifact swapped after it (or after the deployment), deploys and serves
nothing: the release refuses and ledgers why, `govern lineage` names the file, serving answers in the safe state
and ledgers the incident. MLflow's tags describe the verified record and are never read as authority. Each
attack runs on a copy of the lineage world, or of the world with v3 (requested by dana) awaiting approval, on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from governance import events
from governance.lineage.chain import version_lineage
from governance.lineage.pack import EvidenceExportError, export_evidence
from governance.objectstore import sealed_pack_dir
from governance.release import evidence_pack
from governance.release.approvals import latest_request, request_approval
from governance.release.production import verified_production
from governance.release.services import Services
from tests.attacks.support import V3, Pending, answers, ask, incidents, scoring_api
from tests.helpers import wait_until
from tests.lineage.conftest import govern
from tests.lineage.world import MODEL, V1

pytestmark = pytest.mark.slow


def _artifact(settings, version: int) -> Path:
    """The MLmodel file of a registered version, in the state's MLflow artifact store."""
    registered = Services(settings).registry.version(MODEL, version)
    return settings.mlflow_artifacts / MODEL / registered.run_id / "artifacts" / "model" / "MLmodel"


def _approved(pending: Pending) -> None:
    """ravi approves v3's pending pack (dana requested it), as reviewed: nothing has been changed yet."""
    result = govern(pending.settings, "approve", MODEL, "3", "--as", "ravi", "--comment", "reviewed")
    assert result.exit_code == 0, result.output


def _assert_v3_not_deployed(pending: Pending, refusal: str) -> None:
    services = pending.services
    assert services.registry.champion(MODEL) == 1
    assert [d for d in services.control.deployments(MODEL) if d.version == 3] == []
    assert not services.ledger.events(events.DeploymentCompleted, model=MODEL, version=V3)
    assert verified_production(services, MODEL).champion == 1
    assert refusal in pending.release_refusal() or any(
        refusal in r.reason for r in services.ledger.events(events.DeploymentRefused, model=MODEL, version=V3)
    )


def test_an_evidence_pack_edited_after_its_approval_deploys_nothing(pending):
    _approved(pending)
    card = Path(latest_request(pending.services, MODEL, V3).pack_path) / "model_card.md"
    card.write_bytes(card.read_bytes().replace(b"## Limitations", b"## Limitations\n\n- (edited after approval)"))
    assert not pending.release(V3).success
    _assert_v3_not_deployed(pending, "changed since the evidence pack was sealed")
    lineage = govern(pending.settings, "lineage", MODEL, "3")
    assert lineage.exit_code == 1 and "model_card.md" in lineage.output, lineage.output


def test_a_model_artifact_swapped_after_its_approval_deploys_nothing(pending):
    _approved(pending)
    artifact = _artifact(pending.settings, 3)
    artifact.write_bytes(artifact.read_bytes() + b"\n# tampered\n")
    assert not pending.release(V3).success
    _assert_v3_not_deployed(pending, "artifact's digest")
    refused = pending.services.ledger.latest(events.DeploymentRefused, model=MODEL)
    assert refused.version == V3 and "the approved evidence names" in refused.reason


def test_a_changed_sealed_file_is_a_finding_and_no_pack_is_exported(attacked, tmp_path):
    services = Services(attacked)
    card = Path(latest_request(services, MODEL, V1).pack_path) / "model_card.md"
    card.write_bytes(card.read_bytes() + b"\nedited later\n")
    doc = version_lineage(services, MODEL, V1).document
    assert doc["evidence_pack"]["status"].startswith("DOES NOT VERIFY")
    assert any("model_card.md" in finding for finding in doc["findings"])
    lineage = govern(attacked, "lineage", MODEL, "1")
    assert lineage.exit_code == 1 and "model_card.md" in lineage.output, lineage.output
    exported = tmp_path / "exported"
    exported.mkdir()
    with pytest.raises(EvidenceExportError, match="model_card.md: changed since the evidence pack was sealed"):
        export_evidence(services, MODEL, V1, exported / "pack.zip")
    assert not list(exported.iterdir())


def test_an_artifact_changed_after_its_governed_deployment_is_not_served(attacked):
    """v1, the champion, changed in the artifact store: a scoring API starting now must load it from there."""
    artifact = _artifact(attacked, 1)
    artifact.write_text(artifact.read_text() + "\n# changed after approval\n")
    with scoring_api(attacked) as client:
        wait_until(
            lambda: "digest" in (client.get(f"/models/{MODEL}").json()["unserved_reason"] or ""), "the digest refusal"
        )
        status = client.get(f"/models/{MODEL}").json()
        assert status["champion_version"] == 1
        assert status["served_version"] is None and status["safe_state"] is True
        for answer in ask(client, attacked):
            assert answer["outcome"] == "refer" and answer["safe_state"] is True and answer["version"] is None
            assert "refusing to load a changed artifact" in answer["safe_state_reason"]
    assert incidents(attacked, "refusing to load a changed artifact")
    status = govern(attacked, "status")
    assert status.exit_code == 1 and "INCIDENT" in status.output, status.output


def test_rewritten_mlflow_tags_change_nothing_in_status_or_serving(attacked):
    """v1 is champion (rolled back to). An insider gives v2 v1's tags and v1 a stranger's: nothing reads them."""
    client = Services(attacked).registry.client
    last = Services(attacked).ledger.latest(events.Event, model=MODEL).seq
    before = (govern(attacked, "status", "--json"), verified_production(Services(attacked), MODEL))
    assert before[0].exit_code == 0, before[0].output
    v1_tags = client.get_model_version(MODEL, "1").tags
    for name in ("governance.evidence_pack", "governance.approver", "governance.approval_statement"):
        client.set_model_version_tag(MODEL, "2", name, v1_tags[name])
        client.set_model_version_tag(MODEL, "1", name, "mallory")
    client.delete_model_version_tag(MODEL, "1", "governance.dagster_run")
    client.update_model_version(MODEL, "2", description="approved by ravi: the champion")

    after = govern(attacked, "status", "--json")
    assert after.exit_code == 0 and json.loads(after.output) == json.loads(before[0].output)
    assert verified_production(Services(attacked), MODEL) == before[1]
    assert {a["version"] for a in answers(attacked)} == {1}
    assert not Services(attacked).ledger.events(events.ProductionIncident, model=MODEL, since_seq=last)


def test_a_champion_that_cannot_be_loaded_is_not_explained_to_clients_with_the_server_s_paths(attacked):
    """v1's artifact directory removed from the store: serving answers in the safe state, and neither the answers
    nor the open health route quote the loader's error (it names the state dir's paths)."""
    shutil.rmtree(_artifact(attacked, 1).parent)
    with scoring_api(attacked) as client:
        wait_until(lambda: client.get(f"/models/{MODEL}").json()["unserved_reason"], "the failed load")
        reasons = [a["safe_state_reason"] for a in ask(client, attacked)]
        shown = [*reasons, client.get("/healthz").text, client.get(f"/models/{MODEL}").text]
    assert reasons and all("loading it failed (the scoring API's log says why)" in r for r in reasons), reasons
    assert not [text for text in shown if str(attacked.home) in text or "mlflow" in text.lower()], shown


def test_a_later_request_naming_another_pack_does_not_change_the_evidence_of_what_was_deployed(attacked, tmp_path):
    """A writer of the ledger and the state dir seals a copy of the champion's pack with edited figures and appends
    an approval request for it (unsigned): lineage, the console and the evidence export still show the pack the
    deployed approval signed, and name the later one as pending."""
    services = Services(attacked)
    move = verified_production(services, MODEL).move
    real = evidence_pack.verify(sealed_pack_dir(attacked, MODEL, move.version, move.evidence_pack), move.evidence_pack)
    files = {}
    for name in real.manifest["files"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real.path / name, tmp_path / name)
        files[name] = tmp_path / name
    (tmp_path / "model_card.md").write_text((tmp_path / "model_card.md").read_text() + "\nFORGED\n")
    forged = evidence_pack.seal(
        attacked.model_dir(MODEL, move.version) / "evidence", MODEL, move.version, files, real.manifest["facts"]
    )
    request_approval(services, forged, ())
    number = move.version.rsplit("-v", 1)[1]
    shown = version_lineage(services, MODEL, move.version).document["evidence_pack"]
    assert (shown["digest"], shown["deployed"], shown["pending"]) == (move.evidence_pack, True, forged.digest)
    exported = govern(attacked, "evidence", MODEL, number, "--out", str(tmp_path / "export.zip"))
    assert exported.exit_code == 0, exported.output
    with zipfile.ZipFile(tmp_path / "export.zip") as archive:
        assert not [n for n in archive.namelist() if b"FORGED" in archive.read(n)]
    with scoring_api(attacked) as client:
        card = client.get(f"/console/models/{MODEL}/versions/{move.version}/evidence/model_card.md")
    assert card.status_code == 200 and "FORGED" not in card.text


def test_decision_thresholds_changed_in_the_config_after_approval_serve_nothing(attacked, tmp_path):
    """Someone who can edit the config moves the approval threshold: the champion would approve applicants its
    approval never saw approved. Serving answers in the safe state and the change is ledgered as an incident."""
    config = yaml.safe_load(attacked.config_path.read_text())
    config["models"][MODEL]["decisioning"] = {"approve_below": 0.45, "decline_at_or_above": 0.9}
    edited = replace(attacked, config_path=tmp_path / "governance.yaml")  # the world's config is the repo's
    edited.config_path.write_text(yaml.safe_dump(config))
    given = answers(edited, 5)
    assert all(a["safe_state"] and a["outcome"] == "refer" for a in given), given
    assert all("are not the ones approved with its evidence pack" in a["safe_state_reason"] for a in given), given
    assert incidents(edited, "decision thresholds", "are not the ones approved")
