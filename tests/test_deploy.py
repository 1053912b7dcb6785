"""The cluster path's files agree with what the project runs: the Helm values carry the run queue, run monitoring,
retries and threaded sensors of governance.state and the psycopg2 driver of Dagster's storage
(tests/test_production_storage.py writes on the storage they configure), the image and the Procfile start the
same code location, dagster-k8s is locked on dagster's version line, and the scoring API's manifest probes its
liveness and readiness routes."""

from __future__ import annotations

import re

import yaml

from governance.settings import dagster_postgres_url
from governance.state import RUN_MONITORING, RUN_QUEUE, RUN_RETRIES, SENSOR_THREADS
from tests.helpers import REPO

DEPLOY = REPO / "deploy"


def locked() -> dict[str, str]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line)


def test_helm_values_carry_the_instance_settings_the_project_tests():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    daemon = values["dagsterDaemon"]
    queue = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["tagConcurrencyLimits"] == RUN_QUEUE["tag_concurrency_limits"]
    assert queue["dequeueIntervalSeconds"] == RUN_QUEUE["dequeue_interval_seconds"]
    monitoring = daemon["runMonitoring"]
    assert monitoring["enabled"] and monitoring["startTimeoutSeconds"] == RUN_MONITORING["start_timeout_seconds"]
    assert daemon["runRetries"]["maxRetries"] == RUN_RETRIES["max_retries"]
    assert daemon["runRetries"]["retryOnAssetOrOpFailure"] == RUN_RETRIES["retry_on_asset_or_op_failure"]
    assert daemon["sensors"] == {
        "useThreads": SENSOR_THREADS["use_threads"],
        "numWorkers": SENSOR_THREADS["num_workers"],
    }
    assert values["runLauncher"]["type"] == "K8sRunLauncher" and values["postgresql"]["enabled"] is False
    # the chart's storage URL is postgresqlScheme://...: the driver the project gives Dagster's storage, psycopg2
    scheme = dagster_postgres_url("postgresql://dagster@postgres/dagster").partition("://")[0]
    assert values["postgresql"]["postgresqlScheme"] == scheme == "postgresql+psycopg2"
    (code,) = values["dagster-user-deployments"]["deployments"]
    assert code["readinessProbe"] and code["livenessProbe"]
    text = (DEPLOY / "helm" / "values.yaml").read_text().lower()
    assert "password:" not in text.replace("postgresqlpassword", "")  # secrets by name only


def test_the_image_the_procfile_and_the_chart_start_the_same_code_location():
    dockerfile = (REPO / "Dockerfile").read_text()
    command = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert command is not None
    args = yaml.safe_load(command.group(1))
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (code,) = values["dagster-user-deployments"]["deployments"]
    assert args[:3] == ["dagster", "api", "grpc"] and args[3:7] == code["dagsterApiGrpcArgs"]
    procfile = dict(line.split(": ", 1) for line in (DEPLOY / "Procfile").read_text().splitlines() if ": " in line)
    assert " ".join(code["dagsterApiGrpcArgs"]) in procfile["code"]
    python = re.search(r"^FROM python:(\d+\.\d+)", dockerfile, re.M)
    assert python is not None and python.group(1) == "3.11"


def test_dagster_k8s_is_locked_on_dagster_s_version_line():
    versions = locked()
    assert versions["dagster-k8s"] == versions["dagster-postgres"]  # the 0.x line released with dagster 1.x
    assert "kubernetes" in versions


def test_the_scoring_api_manifest_probes_liveness_and_readiness():
    deployment = next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / "scoring-api.yaml").read_text()))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
