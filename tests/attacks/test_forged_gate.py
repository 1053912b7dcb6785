"""A version the release gate denied, released through an allowance a writer of the ledger and the state dir forges:
a gate entry saying `allowed` and a pack sealing it with the version's own reports (gate entries are unsigned, and
`request_approval` only ledgers a request). The denial before it is in the ledger, on the same evidence under the
same policy: an allowance that waives none of its rules lets nobody approve the pack, and serves nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from governance import events
from governance.cards.card import CARD_HTML
from governance.data.validation import validation_path
from governance.release.approvals import request_approval
from governance.release.evidence_pack import EXPLAINABILITY_FILE, GATE_FILE, seal
from governance.release.production import verified_production
from governance.release.requests import request_candidate
from jobs import candidate_job_name
from jobs.candidates import next_candidate_key
from resources.reports import stored_path
from tests.attacks.support import key_of
from tests.lineage.conftest import govern
from tests.lineage.world import MODEL, database_env


def _denied_candidate(pending) -> str:
    """dana's signed request for the next version, trained on biased data: the gate denies it."""
    settings, services = pending.settings, pending.services
    version = next_candidate_key(pending.life.instance, pending.life.registry, pending.life.config.model(MODEL))
    request_candidate(services, MODEL, version, "dana", key_of(settings, "dana"))
    job = pending.life.defs.resolve_job_def(candidate_job_name(MODEL))
    with database_env(settings):
        job.execute_in_process(
            instance=pending.life.instance,
            partition_key=version,
            run_config={"ops": {f"{MODEL}__applications": {"config": {"seed": 21, "bias": 0.6}}}},
            raise_on_error=False,
        )
    gate = services.ledger.latest(events.GateDecided, model=MODEL, version=version)
    assert gate is not None and gate.allowed is False, "the gate did not deny the biased candidate"
    return version


def _forged_pack(pending, version: str, tmp_path: Path) -> str:
    """The insider's pack: the version's own reports, its gate decision rewritten as allowed, a gate entry to match."""
    settings, services = pending.settings, pending.services
    gate = services.ledger.latest(events.GateDecided, model=MODEL, version=version)
    registered = services.ledger.latest(events.ModelRegistered, model=MODEL, version=version)
    decision = {**json.loads(stored_path(settings, MODEL, version, GATE_FILE).read_bytes()), "denials": []}
    decision["allowed"] = True
    forged = services.ledger.append(replace(gate, allowed=True, decision=decision, seq=0, ts="", entry_hash=""))
    (tmp_path / GATE_FILE).write_text(json.dumps(decision))
    model_dir = settings.model_dir(MODEL, version)
    reports = ("performance.json", "fairness.json", EXPLAINABILITY_FILE)
    files = {
        "model_card.html": model_dir / CARD_HTML,
        "model_card.md": model_dir / "model_card.md",
        **{name: stored_path(settings, MODEL, version, name) for name in reports},
        GATE_FILE: tmp_path / GATE_FILE,
        "validation.json": validation_path(settings, MODEL, registered.dvc_md5),
        **{f"policy/{name}": services.policies.directory / name for name in services.policies.file_digests},
    }
    facts = {
        "data_md5": registered.dvc_md5,
        "artifact_sha256": registered.artifact,
        "policy_digest": services.policies.digest,
        "mlflow_run_id": registered.mlflow_run_id,
        "registered_version": registered.registered_version,
        "code_version": registered.code_version,
        "validation_digest": registered.validation,
        "gate_ledger_entry": forged.entry_hash,
    }
    pack = seal(model_dir / "evidence", MODEL, version, files, facts)
    request_approval(services, pack, ("dana",))
    return pack.digest


def test_an_allowance_forged_over_the_gate_s_denial_lets_nobody_approve_and_serves_nothing(pending, tmp_path):
    settings, services = pending.settings, pending.services
    before = verified_production(services, MODEL).champion
    version = _denied_candidate(pending)
    evidence = _forged_pack(pending, version, tmp_path)
    number = version.rsplit("-v", 1)[1]
    approved = govern(settings, "approve", MODEL, number, "--as", "ravi", "--evidence", evidence)
    refused = f"{approved.output}{approved.exception}"
    assert approved.exit_code != 0 and "the release gate denied" in refused and "a forged allowance" in refused
    assert not services.ledger.events(events.ApprovalGranted, model=MODEL, version=version)
    assert not pending.release(version).success or verified_production(services, MODEL).champion == before
    assert verified_production(services, MODEL).champion == before
