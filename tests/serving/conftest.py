"""A real scoring API over real registered, deployed model versions.

Built once for the package (training and registering takes seconds): three
versions of the small credit_scoring model trained on generator data and
registered in MLflow; v2 then v1 deployed, v3 only registered. Deployments,
rollbacks and kill-switch flips are the governed ones, signed by the demo cast:
serving follows the signed record, never a row or the alias. Beside it,
`credit_linear`, a logistic regression whose SHAP background is read from its
DVC data snapshot, deployed as v1. Each test starts with credit_scoring v1 as
champion and the kill switch off.
"""

from __future__ import annotations

import dataclasses
import shutil
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
from governance.release.deployment import deploy, rollback
from governance.release.kill_switch import set_kill_switch
from governance.release.production import verified_production
from governance.release.services import Services
from governance.serving import create_app
from governance.serving.tokens import TokenStore
from governance.settings import Settings
from governance.trust.demo import demo_key_path, demo_principals
from governance.trust.keys import load_private_key
from tests.helpers import REPO, RunningAPI, sealed_approval, wait_until

SMALL_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "small.yaml"
MODEL = "credit_scoring"
LINEAR = "credit_linear"
POLL_SECONDS = 0.2
REASON_CODES = {
    "debt_to_income": "Excessive obligations in relation to income",
    "credit_utilisation": "High balances relative to credit limits",
}


@dataclass
class Deployed:
    settings: Settings
    services: Services
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


def register(
    registry: ModelRegistry, model: GovernedModel, version: int, pipeline, data_md5: str = "not-read-for-tree-models"
) -> RegisteredVersion:
    key = version_key(model.name, version)
    run_id = registry.start_run(model.name, key, tags={"governance.data_md5": data_md5})
    registered = registry.register(
        model.name,
        key,
        run_id,
        pipeline,
        training.TRUSTED_TYPES[model.estimator.kind],
        tags={"governance.data_md5": data_md5},
    )
    registry.finish_run(run_id, ok=True)
    return registered


def deploy_version(settings: Settings, version: int, model: str = MODEL) -> None:
    """A governed deployment of registered `version`: ravi's signed approval of its sealed evidence, deployed."""
    deploy(Services(settings), *sealed_approval(settings, version, model), actor="system:production_deployment")


def roll_back(services: Services, version: int, reason: str) -> None:
    """paul's signed rollback to `version` (deployed before)."""
    rollback(services, MODEL, "paul", _key(services.settings, "paul"), reason, to_version=version)


def flip_kill_switch(services: Services, disabled: bool, reason: str) -> None:
    """bea's (business owner) signed kill-switch flip."""
    set_kill_switch(services, MODEL, disabled, "bea", _key(services.settings, "bea"), reason)


def _key(settings: Settings, principal: str):
    return load_private_key(demo_key_path(settings, principal))


def on_database(settings: Settings, database_url: str) -> Settings:
    """The same state dir with its governance stores on `database_url` (MLflow stays where it is), trusting the
    demo roster and the policies it uses (production reads neither from the state dir unless told to) and v1
    deployed there."""
    moved = dataclasses.replace(
        settings,
        database_url=database_url,
        roster_override=settings.home / "roster.yaml",
        policies_override=settings.policies_dir,
    )
    deploy_version(moved, 1)
    return moved


def bearer(settings: Settings, name: str = "tests") -> dict[str, str]:
    """Headers with a new API token (production's scoring API refuses requests without one)."""
    return {"Authorization": f"Bearer {TokenStore.for_settings(settings).create(name, 'cli:tests')}"}


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
    shutil.copytree(REPO / "policies", settings.home / "policies")  # as `govern init` does: `govern serve` reads it
    demo_principals(settings)
    config = load_config(settings.config_path)
    model = config.model(MODEL)
    registry, control = ModelRegistry.for_settings(settings), ControlStore.for_settings(settings)
    frame = generate_applications(6000, seed=7)
    other = generate_applications(6000, seed=11)
    pipelines = {1: training.fit(model, frame), 2: training.fit(model, other)}
    pipelines[3] = pipelines[1]
    versions = {v: register(registry, model, v, pipelines[v]) for v in (1, 2, 3)}
    deploy_version(settings, 2)
    deploy_version(settings, 1)
    linear = config.model(LINEAR)
    snapshot = snapshot_frame(settings, LINEAR, frame, "generator(rows=6000, seed=7)")
    train = training.split(linear, frame).train
    linear_pipeline = training.fit(linear, train)
    register(registry, linear, 1, linear_pipeline, data_md5=snapshot.md5)
    deploy_version(settings, 1, LINEAR)
    applications = generate_applications(400, seed=23)
    return Deployed(
        settings,
        Services(settings),
        config,
        model,
        registry,
        control,
        DecisionLog.for_settings(settings),
        versions,
        pipelines,
        applications,
        linear,
        linear_pipeline,
        train,
    )


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
    """Every test starts from v1 served and the kill switch off (tests change both), by signed governed actions
    taken only where the record, the alias or the row differ."""
    if "deployed" not in request.fixturenames:
        return
    services = request.getfixturevalue("deployed").services
    production = verified_production(services, MODEL)
    if production.kill_switch or services.control.kill_switch(MODEL).disabled:
        flip_kill_switch(services, False, "test reset")
    if production.champion != 1:
        roll_back(services, 1, "test reset")
    elif services.registry.champion(MODEL) != 1:  # an alias moved by hand: put the cache back
        services.registry.set_champion(MODEL, 1)
    if "api" in request.fixturenames:
        url = request.getfixturevalue("api").url
        wait_until(
            lambda: httpx.get(f"{url}/healthz").json()["models"][MODEL]["answering_version"] == 1,
            "v1 to be answered again",
        )


def body(row: pd.Series, model: GovernedModel, protected: bool = True) -> dict:
    """A request body from a generator row: every feature, and the protected attributes if asked."""
    columns = model.feature_columns + (model.protected_columns if protected else [])
    return {column: _plain(row[column]) for column in columns}


def _plain(value):
    return value.item() if hasattr(value, "item") else value
