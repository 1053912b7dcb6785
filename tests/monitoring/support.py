"""A state dir with governed champions, built through the core (no Dagster): where the tests and bench/mttr.py start.

Each version is trained on its own generated data snapshot (real DVC), registered
in MLflow, given a sealed evidence pack holding its real performance, fairness and
explainability (SHAP) reports, and
deployed through `governance.release.deployment.deploy`, in order, so the last
is the champion and the one before it the rollback target. The approval it is
deployed on is not a signed one (`deploy` trusts its caller to have verified it):
these tests are about what happens after a release. Its ledger entry is written as
a real approval's is, under the policy bundle in force.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from governance import events, training
from governance.config import load_config
from governance.data.generator import generate_applications
from governance.data.snapshot import snapshot_frame
from governance.digests import canonical_json, file_sha256
from governance.metrics.explainability import explainability_report, version_explainer
from governance.metrics.fairness import fairness_report, protected_groups
from governance.metrics.performance import performance_report
from governance.registry import ModelRegistry, version_key
from governance.release.approvals import request_approval
from governance.release.deployment import deploy
from governance.release.evidence_pack import seal, verify
from governance.release.services import Services
from governance.settings import Settings
from governance.trust.demo import demo_principals
from tests.helpers import REPO, gate_decision_file, signed_approval, small_model, write_config

MODEL = "credit_scoring"
MONITORING = {
    "collect_protected_attributes": True,
    "window_size": 500,
    "min_window_size": 200,
    "check_interval_seconds": 1,
    "retrain_cron": "0 3 * * 1",
}


def monitored_config(path: Path, models: tuple[str, ...] = (MODEL,), **monitoring) -> Path:
    entry = small_model(monitoring={**MONITORING, **monitoring})
    return write_config(path, {name: entry for name in models})


def settings_for(home: Path, config: Path) -> Settings:
    return Settings(home=home, config_path=config, policies_override=REPO / "policies")


def build_state(root: Path, versions: list[dict], models: tuple[str, ...] = (MODEL,)) -> Settings:
    """State dir under `root` with each model's `versions` (generator knobs + seed) deployed in order."""
    settings = settings_for(root / "govern", monitored_config(root / "governance.yaml", models))
    demo_principals(settings)
    config = load_config(settings.config_path)
    for name in models:
        for knobs in versions:
            deploy_version(settings, config.model(name), **knobs)
    return settings


def deploy_version(settings: Settings, model, seed: int, rows: int = 6000, **knobs) -> int:
    """Train a version on generated data (`knobs`: drift, bias, proxy) and deploy it as the champion."""
    frame, pipeline = train(model, seed, rows, **knobs)
    return deploy_trained(settings, model, frame, pipeline, f"generator(seed={seed}, rows={rows}, {knobs})")


def train(model, seed: int, rows: int, **knobs):
    frame = generate_applications(rows, seed=seed, **knobs)
    return frame, training.fit(model, training.split(model, frame).train)


def deploy_trained(settings: Settings, model, frame, pipeline, source: str) -> int:
    """Snapshot, register, seal (with its real performance report) and deploy a trained pipeline."""
    _, registered, pack = seal_trained(settings, model, frame, pipeline, source)
    _approve_and_deploy(Services(settings), pack)
    return registered.version


def redeploy(settings: Settings, model: str, version: int) -> None:
    """An earlier version released again by people: a new approval of its sealed evidence, then a deployment
    (not a rollback: nobody rolls back away from the champion it replaces)."""
    services = Services(settings)
    key = version_key(model, version)
    digest = [d for d in services.control.deployments(model, "completed") if d.version == version][-1].evidence_digest
    _approve_and_deploy(services, verify(settings.evidence_pack_dir(model, key, digest), digest))


def _approve_and_deploy(services: Services, pack) -> None:
    """A real signed approval by ravi, ledgered as `decide` ledgers a grant, then the deployment."""
    approval = replace(signed_approval(services.settings, pack), policy_digest=services.policies.digest)
    services.ledger.append(
        events.ApprovalGranted(
            actor=approval.principal,
            model=approval.model,
            version=approval.version,
            statement=approval.statement_digest,
            evidence_pack=pack.digest,
            policy=approval.policy_digest,
            roles=approval.roles,
            comment="",
        )
    )
    deploy(services, approval, pack, actor="system:production_deployment")


def request_candidate(settings: Settings, model, seed: int, rows: int = 6000) -> str:
    """Train, register and seal a candidate and ledger its approval request (it stays pending); its key."""
    frame, pipeline = train(model, seed, rows)
    key, _, pack = seal_trained(settings, model, frame, pipeline, f"generator(seed={seed}, rows={rows})")
    request_approval(Services(settings), pack, requested_by=("system",))
    return key


def seal_trained(settings: Settings, model, frame, pipeline, source: str):
    """Snapshot, register and seal a trained pipeline with its real performance and explainability reports;
    returns (version key, registered version, evidence pack)."""
    registry = ModelRegistry.for_settings(settings)
    snapshot = snapshot_frame(settings, model.name, frame, source)
    key = version_key(model.name, registry.latest_version(model.name) + 1)
    run_id = registry.start_run(model.name, key, tags={})
    registered = registry.register(
        model.name,
        key,
        run_id,
        pipeline,
        training.TRUSTED_TYPES[model.estimator.kind],
        tags={"governance.data_md5": snapshot.md5},
    )
    registry.finish_run(run_id, ok=True)
    test = training.split(model, frame).test.reset_index(drop=True)
    scores = training.score(pipeline, model, test)
    report = performance_report(
        training.unfavourable(model, test), scores, protected_groups(model, test), model.decisioning
    )
    out = settings.model_dir(model.name, key)
    out.mkdir(parents=True, exist_ok=True)
    (out / "performance.json").write_bytes(canonical_json(report))
    fairness = fairness_report(
        model,
        1 - training.unfavourable(model, test),
        scores < model.decisioning.approve_below,
        protected_groups(model, test),
    )
    (out / "fairness.json").write_bytes(canonical_json(fairness))
    explainer = version_explainer(settings, model, pipeline, snapshot.md5)
    explained, _ = explainability_report(model, explainer, test, protected_groups(model, test))
    (out / "explainability.json").write_bytes(canonical_json(explained))
    Services(settings).ledger.append(
        events.ExplainabilityReportPublished(  # as the graph's asset ledgers it
            actor="system:explainability_report",
            model=model.name,
            version=key,
            report=file_sha256(out / "explainability.json"),
            artifact=registered.artifact_sha256,
        )
    )
    (out / "model_card.md").write_text(f"# {key}\n")
    pack = seal(
        out / "evidence",
        model.name,
        key,
        {
            "performance.json": out / "performance.json",
            "fairness.json": out / "fairness.json",
            "explainability.json": out / "explainability.json",
            "model_card.md": out / "model_card.md",
            "gate_decision.json": gate_decision_file(settings, model.name, key),
        },
        {
            "artifact_sha256": registered.artifact_sha256,
            "policy_digest": Services(settings).policies.digest,
            "data_md5": snapshot.md5,
        },
    )
    return key, registered, pack


def copy_state(settings: Settings, root: Path) -> Settings:
    """A private copy of a built state dir (MLflow's artifacts stay where they were built: read-only use)."""
    shutil.copytree(settings.home, root / "govern")
    return settings_for(root / "govern", settings.config_path)
