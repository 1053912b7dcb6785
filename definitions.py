"""The code location: every governed model's asset graph, jobs, sensors and resources, assembled here.

The one assembly point, above the packages it assembles (governance_assets, jobs, sensors, resources), which
never import it; the programs (programs/) and the tests build from it. `dagster dev -w workspace.yaml`, the
image and the Helm chart load `defs`, lazily. Which models exist comes from the
governance config (`GOVERN_CONFIG`, default `governance.yaml`); where state lives
comes from the environment through `Settings.from_env`.
"""

from __future__ import annotations

import dagster as dg

from governance.config import GovernanceConfig, GovernedModel, load_config
from governance.settings import Settings, apply_offline_env
from governance_assets.data.assets import data_assets
from governance_assets.evaluation.assets import evaluation_assets
from governance_assets.monitoring.assets import monitoring_assets
from governance_assets.production.assets import serving_state_asset
from governance_assets.release.assets import release_assets
from governance_assets.training.assets import training_assets
from jobs import model_jobs
from jobs.monitoring import monitoring_jobs, retraining_schedule
from resources import governance_resources
from sensors.approvals import approvals_sensor
from sensors.monitoring import fleet_sensors
from sensors.requests import candidate_requests_sensor
from speedups import spare_the_collector


def model_definitions(
    model: GovernedModel, jobs: list[dg.UnresolvedAssetJobDefinition | dg.JobDefinition]
) -> dg.Definitions:
    """The asset graph, jobs (built by the caller: the fleet's sensors target the same ones) and schedule of one
    governed model; its sensors are the fleet's."""
    return dg.Definitions(
        assets=[
            *data_assets(model),
            *training_assets(model),
            *evaluation_assets(model),
            *release_assets(model),
            *monitoring_assets(model),
            serving_state_asset(model),
        ],
        jobs=jobs,
        schedules=[retraining_schedule(model)],
    )


def build_definitions(settings: Settings, config: GovernanceConfig) -> dg.Definitions:
    # In-process: steps form a chain and each would otherwise pay seconds of imports (GX, MLflow, SHAP).
    # Scale out per run with a run launcher (k8s, celery) in dagster.yaml.
    models = list(config.models.values())
    jobs = {model.name: [*model_jobs(model), *monitoring_jobs(model)] for model in models}
    every_job = [job for model_jobs in jobs.values() for job in model_jobs]
    return dg.Definitions.merge(
        *(model_definitions(model, jobs[model.name]) for model in models),
        dg.Definitions(
            sensors=[
                *fleet_sensors(models, every_job),
                approvals_sensor(models, every_job),
                candidate_requests_sensor(models, every_job),
            ],
            resources=governance_resources(settings),
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, built when Dagster loads it (not when `build_definitions` is imported: the CLI, the
    demo and the tests build their own, from their `--config` and `--home`)."""
    apply_offline_env()
    settings = Settings.from_env()
    settings.require_state()  # never a state dir of its own making, nor another config's
    definitions = build_definitions(settings, load_config(settings.config_path))
    spare_the_collector()
    return definitions
