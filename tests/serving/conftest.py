"""A real scoring API over real registered, deployed model versions.

Built once for the package (training and registering takes seconds): three
versions of the small credit_scoring model trained on generator data and
registered in MLflow; v1 and v2 deployed through the control store, v3 only
registered. Beside it, `credit_linear`, a logistic regression whose SHAP
background is read from its DVC data snapshot, deployed as v1. Each test starts
with credit_scoring v1 as champion and the kill switch off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from governance import training
from governance.config import GovernanceConfig, GovernedModel, load_config
from governance.control import ControlStore
from governance.data.generator import generate_applications
from governance.data.snapshot import snapshot_frame
from governance.decisions import DecisionLog
from governance.registry import ModelRegistry, RegisteredVersion, version_key
from governance.serving import create_app
from governance.settings import Settings
from tests.helpers import RunningAPI, wait_until

SMALL_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "small.yaml"
MODEL = "credit_scoring"
LINEAR = "credit_linear"
POLL_SECONDS = 0.2
REASON_CODES = {"debt_to_income": "Excessive obligations in relation to income",
                "credit_utilisation": "High balances relative to credit limits"}


@dataclass
class Deployed:
    settings: Settings
    config: GovernanceConfig
    model: GovernedModel
    registry: ModelRegistry
    control: ControlStore
    decisions: DecisionLog
    versions: dict[int, RegisteredVersion]
    pipelines: dict[int, object]
    applications: pd.DataFrame  # generator rows to send (features and protected attributes)
    linear: GovernedModel
    linear_pipeline: object
    linear_training_rows: pd.DataFrame


def register(registry: ModelRegistry, model: GovernedModel, version: int, pipeline,
             data_md5: str = "not-read-for-tree-models") -> RegisteredVersion:
    key = version_key(model.name, version)
    run_id = registry.start_run(model.name, key, tags={"governance.data_md5": data_md5})
    registered = registry.register(model.name, key, run_id, pipeline, training.TRUSTED_TYPES[model.estimator.kind],
                                   tags={"governance.data_md5": data_md5})
    registry.finish_run(run_id, ok=True)
    return registered


def deploy(control: ControlStore, registered: RegisteredVersion) -> None:
    """Record a completed governed deployment of exactly this artifact (what production_deployment writes)."""
    started = control.start_deployment(model=registered.model, version=registered.version, kind="deploy",
                                       artifact_sha256=registered.artifact_sha256, evidence_digest="e" * 64,
                                       approval_digest="a" * 64, previous_version=None, actor="system:test")
    control.finish_deployment(started.id, "completed")


def config_file(path: Path, collect_protected: bool, with_linear: bool = True) -> Path:
    """The small test config's model (and its logistic regression twin), with reason texts and protected
    attributes collected or not."""
    entry = yaml.safe_load(SMALL_CONFIG.read_text())["models"][MODEL]
    entry.update(monitoring={"collect_protected_attributes": collect_protected}, reason_codes=REASON_CODES)
    linear = {**entry, "estimator": {"kind": "logistic_regression"}}
    models = {MODEL: entry, LINEAR: linear} if with_linear else {MODEL: entry}
    path.write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    return path


@pytest.fixture(scope="package")
def deployed(tmp_path_factory) -> Deployed:
    root = tmp_path_factory.mktemp("serving")
    settings = Settings(home=root / "govern", config_path=config_file(root / "governance.yaml", True))
    settings.home.mkdir(parents=True)
    config = load_config(settings.config_path)
    model = config.model(MODEL)
    registry, control = ModelRegistry.for_settings(settings), ControlStore.for_settings(settings)
    frame = generate_applications(6000, seed=7)
    other = generate_applications(6000, seed=11)
    pipelines = {1: training.fit(model, frame), 2: training.fit(model, other)}
    pipelines[3] = pipelines[1]
    versions = {v: register(registry, model, v, pipelines[v]) for v in (1, 2, 3)}
    deploy(control, versions[1])
    deploy(control, versions[2])
    registry.set_champion(MODEL, 1)
    linear = config.model(LINEAR)
    snapshot = snapshot_frame(settings, LINEAR, frame, "generator(rows=6000, seed=7)")
    train = training.split(linear, frame).train
    linear_pipeline = training.fit(linear, train)
    deploy(control, register(registry, linear, 1, linear_pipeline, data_md5=snapshot.md5))
    registry.set_champion(LINEAR, 1)
    applications = generate_applications(400, seed=23)
    return Deployed(settings, config, model, registry, control, DecisionLog.for_settings(settings), versions,
                    pipelines, applications, linear, linear_pipeline, train)


@pytest.fixture(scope="package")
def api(deployed: Deployed):
    with RunningAPI(create_app(deployed.settings, deployed.config, poll_seconds=POLL_SECONDS)) as running:
        yield running


@pytest.fixture
def client(api: RunningAPI):
    with httpx.Client(base_url=api.url, timeout=10) as client:
        yield client


@pytest.fixture(autouse=True)
def v1_champion_switch_off(request):
    """Every test starts from v1 served and the kill switch off (tests change both)."""
    if "deployed" not in request.fixturenames:
        return
    deployed = request.getfixturevalue("deployed")
    deployed.control.set_kill_switch(MODEL, False, "test reset", "system:test", "0" * 64)
    deployed.registry.set_champion(MODEL, 1)
    if "api" in request.fixturenames:
        wait_until(lambda: httpx.get(f"{request.getfixturevalue('api').url}/models/{MODEL}").json()
                   ["served_version"] == 1, "v1 to be served again")


def body(row: pd.Series, model: GovernedModel, protected: bool = True) -> dict:
    """A request body from a generator row: every feature, and the protected attributes if asked."""
    columns = model.feature_columns + (model.protected_columns if protected else [])
    return {column: _plain(row[column]) for column in columns}


def _plain(value):
    return value.item() if hasattr(value, "item") else value
