"""Monitoring on real state: two governed versions, their decisions, the Dagster instance of the state dir.

The package builds one state dir (`golden`): v1 trained on a shifted population
(generator drift=1.0), v2 on the baseline population and deployed after it, so
v2 is the champion and v1 the rollback target. Each test works on a copy
(`monitored`), sends generated applications through the scoring API's decision
path, evaluates the real sensors with `build_sensor_context` on the copy's own
Dagster instance (cursors kept as the daemon keeps them) and runs what they
request in-process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from definitions import build_definitions
from governance import events
from governance.cli.monitoring import labels_app
from governance.config import GovernedModel, load_config
from governance.data.generator import generate_applications
from governance.monitoring.traffic import Traffic
from governance.release.deployment import rollback
from governance.release.services import Services
from governance.settings import Settings
from governance.trust.demo import demo_key_path
from governance.trust.keys import load_private_key
from programs.instance import open_instance
from resources import governance_resources
from sensors.monitoring import monitoring_sensor_name
from tests.monitoring.support import MODEL, build_state, copy_state

CONCERNS = ("data_drift", "score_drift", "fairness", "performance")


def sensor_name(sensor: str) -> str:
    """The fleet sensor of a monitoring concern; `retraining_requests` and `guard_reports` as they are."""
    return monitoring_sensor_name(sensor) if sensor in CONCERNS else sensor


def windows_cursor(cursor: str, model: str = MODEL) -> dict[str, int]:
    """One model's stream positions in a fleet sensor's cursor."""
    return json.loads(cursor)["windows"][model]


def govern_labels(settings: Settings, *args: str):
    """`govern labels ...`, mounted as the CLI registers it (`app.add_typer(labels_app, name="labels")`)."""
    app = typer.Typer()
    app.add_typer(labels_app, name="labels")

    @app.callback()
    def _global(ctx: typer.Context) -> None:
        ctx.obj = settings

    return CliRunner().invoke(app, ["labels", *args])


@pytest.fixture(scope="package")
def golden(tmp_path_factory) -> Settings:
    return build_state(tmp_path_factory.mktemp("monitoring-golden"), [dict(seed=8, drift=1.0), dict(seed=7)])


@dataclass
class Monitored:
    settings: Settings
    model: GovernedModel
    instance: dg.DagsterInstance
    defs: dg.Definitions
    traffic: Traffic
    cursors: dict[str, str | None] = field(default_factory=dict)
    sent: list[tuple[pd.DataFrame, list[dict]]] = field(default_factory=list)

    @property
    def services(self) -> Services:
        return Services(self.settings)

    def send(self, seed: int, rows: int = 500, **knobs) -> list[dict]:
        answers = self.traffic.send(rows, seed=seed, **knobs)
        self.sent.append((generate_applications(rows, seed=seed, **knobs), answers))
        return answers

    def tick(self, sensor: str, resources: dict | None = None) -> dg.SensorResult:
        """One evaluation of a sensor as the daemon does it: from its last cursor, keeping the new one and
        persisting the observations and partitions it reports."""
        definition = self.defs.resolve_sensor_def(sensor_name(sensor))
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(sensor),
            resources=resources or governance_resources(self.settings),
        ) as context:
            result = definition(context)
        if result.cursor is not None:
            self.cursors[sensor] = result.cursor
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        for request in result.dynamic_partitions_requests or []:  # the daemon applies them with the tick's runs
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys or []))
        return result

    def tick_all(self) -> list[dg.RunRequest]:
        return [request for concern in CONCERNS for request in (self.tick(concern).run_requests or [])]

    def run(self, request: dg.RunRequest, job: str = "remediation") -> dg.ExecuteInProcessResult:
        """Execute a requested run in this process, on the state dir's instance."""
        return self.defs.resolve_job_def(f"{MODEL}_{job}").execute_in_process(
            run_config=request.run_config,
            tags=request.tags,
            partition_key=request.partition_key,
            instance=self.instance,
            raise_on_error=False,
        )

    def labels_file(self, path: Path, flip: bool = False, everyone_repaid: bool = False) -> Path:
        """Every sent decision's real outcome (the generator's `default`), its opposite, or "repaid" for all."""
        rows = [
            {"decision_id": answer["decision_id"], "label": 0 if everyone_repaid else int(outcome) ^ int(flip)}
            for frame, answers in self.sent
            for answer, outcome in zip(answers, frame["default"])
        ]
        pd.DataFrame(rows, columns=["decision_id", "label"]).to_csv(path, index=False)
        return path

    def roll_back_by_hand(self, version: int) -> None:
        """What `govern rollback --as paul` does (a person of the ML platform team)."""
        key = load_private_key(demo_key_path(self.settings, "paul"))
        rollback(self.services, MODEL, "paul", key, "test setup", to_version=version)
        self.traffic.follower.refresh()

    def use_policies(self, directory: Path) -> None:
        """Another policy bundle in force (GOVERN_POLICIES), as the code location would load it."""
        self.settings = replace(self.settings, policies_override=directory)
        self.defs = build_definitions(self.settings, load_config(self.settings.config_path))

    def ledger(self, kind: type[events.E]) -> list[events.E]:
        return self.services.ledger.events(kind, model=MODEL)


@pytest.fixture
def monitored(golden: Settings, tmp_path: Path) -> Monitored:
    settings = copy_state(golden, tmp_path)
    config = load_config(settings.config_path)
    model = config.model(MODEL)
    return Monitored(
        settings, model, open_instance(settings), build_definitions(settings, config), Traffic(settings, model)
    )
