"""A governed history to trace, made by the real pieces (shared by the lineage tests and bench/trace.py).

Two versions of the small credit_scoring model trained on different data
snapshots through the real Dagster graph, each approved by a different model risk
approver (signed statements) and deployed by the real release job; decisions
served through the real scoring API while v2 is champion; a signed rollback to v1
by the ML platform; decisions served again; the kill switch on for one decision
and off again.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from governance.config import GovernanceConfig
from governance.data.generator import generate_applications
from governance.release.approvals import decide
from governance.release.deployment import rollback
from governance.release.kill_switch import set_kill_switch
from governance.release.requests import request_candidate
from governance.release.services import Services
from governance.serving.app import create_app
from governance.settings import Settings
from governance.trust.demo import demo_principals
from governance.trust.keys import load_private_key
from jobs import candidate_job_name, release_job_name
from jobs.candidates import next_candidate_key
from tests.helpers import REPO, SMALL_CONFIG, Lifecycle, RunningAPI
from tests.serving.conftest import bearer

MODEL = "credit_scoring"
V1, V2 = f"{MODEL}-v1", f"{MODEL}-v2"
APPROVERS = {V1: "ravi", V2: "rhea"}
SEEDS = {V1: 7, V2: 11}


@dataclass
class World:
    life: Lifecycle
    decisions: dict[str, list[dict]] = field(default_factory=dict)  # phase -> answers
    sent: dict[str, dict] = field(default_factory=dict)  # decision id -> the request body it answered

    @property
    def settings(self):
        return self.life.settings

    @property
    def services(self) -> Services:
        return Services(self.life.settings)

    def key(self, principal: str):
        return load_private_key(self.settings.keys_dir / f"{principal}.key")


def build_world(
    home: Path,
    decisions_per_phase: int = 5,
    database_url: str | None = None,
    mlflow_tracking_uri: str | None = None,
    dagster_database_url: str | None = None,
) -> World:
    """The history in a new state dir; the governance stores on `database_url` (PostgreSQL) if given, and MLflow
    and Dagster on theirs if given too (else in the state dir)."""
    settings = Settings(home=home, config_path=SMALL_CONFIG, policies_override=REPO / "policies")
    if database_url:
        settings = replace(
            settings,
            database_url=database_url,
            mlflow_tracking_uri=mlflow_tracking_uri,
            dagster_database_url=dagster_database_url,
            roster_override=home / "roster.yaml",
        )
    with database_env(settings):
        life = Lifecycle.of(settings)
        demo_principals(life.settings)
        world = World(life)
        _history(world, decisions_per_phase)
    return world


@contextmanager
def database_env(settings: Settings):
    """The Dagster resources (and dagster.yaml) read the stores' URLs from the environment, as in production."""
    wanted = {
        "GOVERN_DATABASE_URL": settings.database_url,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "GOVERN_DAGSTER_DATABASE_URL": settings.dagster_database_url,
    }
    saved = {name: os.environ.get(name) for name in wanted}
    _set_env(wanted)
    try:
        yield
    finally:
        _set_env(saved)


def _set_env(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _history(world: World, decisions_per_phase: int) -> None:
    life = world.life
    for version in (V1, V2):
        _candidate(world, version)
        decide(
            world.services,
            MODEL,
            version,
            "approve",
            APPROVERS[version],
            world.key(APPROVERS[version]),
            comment=f"reviewed {version}",
        )
        release = life.defs.resolve_job_def(release_job_name(MODEL))
        assert release.execute_in_process(instance=life.instance, partition_key=version).success
    app = create_app(life.settings, life.config, poll_seconds=0.1)
    headers = bearer(life.settings) if life.settings.production else {}
    with RunningAPI(app) as api, httpx.Client(base_url=api.url, timeout=10, headers=headers) as client:
        world.decisions["before_rollback"] = _serve(world, client, 2, decisions_per_phase, seed=21)
        rollback(world.services, MODEL, "paul", world.key("paul"), "v2 under investigation")
        world.decisions["after_rollback"] = _serve(world, client, 1, decisions_per_phase, seed=22)
        set_kill_switch(world.services, MODEL, True, "bea", world.key("bea"), "complaints spike")
        world.decisions["kill_switch"] = _serve(world, client, None, 1, seed=23)
        set_kill_switch(world.services, MODEL, False, "bea", world.key("bea"), "complaints explained")


def _candidate(world: World, version: str) -> None:
    life = world.life
    key = next_candidate_key(life.instance, life.registry, life.config.model(MODEL))
    assert key == version
    request_candidate(world.services, MODEL, key, "dana", world.key("dana"))  # as `govern train` signs it
    job = life.defs.resolve_job_def(candidate_job_name(MODEL))
    result = job.execute_in_process(
        instance=life.instance,
        partition_key=key,
        run_config={"ops": {f"{MODEL}__applications": {"config": {"seed": SEEDS[version]}}}},
    )
    assert result.success


def _serve(world: World, client: httpx.Client, version: int | None, count: int, seed: int) -> list[dict]:
    sent = served_decisions(client, world.life.config, version, count, seed)
    world.sent.update((answer["decision_id"], body) for body, answer in sent)
    return [answer for _, answer in sent]


def served_decisions(
    client: httpx.Client, config: GovernanceConfig, version: int | None, count: int, seed: int
) -> list[tuple[dict, dict]]:
    """Wait until the API serves `version` (None: the safe state), then send `count` applications; each with the
    answer it got, all from `version`."""
    deadline = time.monotonic() + 30
    while client.get(f"/models/{MODEL}").json()["served_version"] != version and version is not None:
        assert time.monotonic() < deadline, f"the scoring API did not follow to v{version}"
        time.sleep(0.05)
    time.sleep(0.3 if version is None else 0)  # the kill switch is read per batch: no follower to wait for
    frame = generate_applications(count, seed=seed)[config.model(MODEL).feature_columns]
    sent = []
    for record in frame.to_dict(orient="records"):
        body = {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}
        response = client.post(f"/models/{MODEL}/decisions", json=body)
        assert response.status_code == 200, response.text
        sent.append((body, response.json()))
    assert all(answer["version"] == version for _, answer in sent), sent
    return sent
