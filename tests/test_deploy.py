"""The cluster path's files agree with what the project runs: the Helm values carry the run queue, run monitoring,
retries and threaded sensors of governance.state and the psycopg2 driver of Dagster's storage
(tests/test_production_storage.py writes on the storage they configure), the image and the Procfile start the
same code location, dagster-k8s is locked on dagster's version line, the scoring API's manifest probes its
liveness and readiness routes, each process holds its own role's secret, the guard's init container makes a
loadable key of a Kubernetes secret volume, and the Dockerfile passes hadolint."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from governance.settings import dagster_postgres_url
from governance.state import RUN_MONITORING, RUN_QUEUE, RUN_RETRIES, SENSOR_THREADS
from governance.trust.keys import generate_key_pair, write_private_key
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


def _manifest(name: str) -> dict:
    return next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d["kind"] == "Deployment")


def _secrets(container: dict) -> set[str]:
    return {source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source}


def test_dagster_the_scoring_api_and_the_guard_each_hold_their_own_role_s_secret():
    """deploy/postgres/grants.sql gives serving, the guard and Dagster different rights: one secret for all three
    would run each as the most privileged role."""
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (code,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    dagster = {s["name"] for s in code["envSecrets"]} | {s["name"] for s in launcher["envSecrets"]}
    (api,) = _manifest("scoring-api.yaml")["spec"]["template"]["spec"]["containers"]
    (guard,) = _manifest("guard.yaml")["spec"]["template"]["spec"]["containers"]
    assert dagster == {"governance-dagster-env"}
    assert values["postgresql"]["postgresqlUsername"] == "govern_dagster"  # Dagster's storage, as its role too
    assert _secrets(api) == {"governance-serving-env"} and _secrets(guard) == {"governance-guard-env"}
    grants = (DEPLOY / "postgres" / "grants.sql").read_text()
    for role in ("govern_dagster", "govern_serving", "govern_guard"):
        assert f"\\set {role.split('_')[1]} {role}" in grants


def test_the_guard_s_init_container_turns_a_kubernetes_secret_volume_into_a_key_the_guard_loads():
    """kubelet mounts a secret as root-owned symlinks into a timestamped directory, readable by the pod's fsGroup;
    the project loads only a regular file nobody else can read. The init container's own command, run as the
    guard's user on that layout, makes a key the guard loads; the mounted path itself is refused."""
    if os.geteuid() != 0:
        pytest.skip("needs root to lay out a secret volume as kubelet does (root-owned, the pod's group)")
    pod = _manifest("guard.yaml")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (guard,) = pod["containers"]
    source, target = Path(init["command"][-2]), Path(init["command"][-1])
    key_env = {e["name"]: e["value"] for e in guard["env"]}["GOVERN_SYSTEM_KEY"]
    assert Path(key_env) == target
    with tempfile.TemporaryDirectory() as pod_root:  # pytest's own is root's alone: the guard's user must enter
        os.chmod(pod_root, 0o755)
        _run_the_init_container(Path(pod_root), pod, source, target)


def _run_the_init_container(root: Path, pod: dict, source: Path, target: Path) -> None:
    user, group = pod["securityContext"]["runAsUser"], pod["securityContext"]["fsGroup"]
    (init,) = pod["initContainers"]
    secret, keys = root / source.parent.relative_to("/"), root / target.parent.relative_to("/")
    dated = secret / "..2026_12_07_00_00_00.000000000"
    dated.mkdir(parents=True)
    write_private_key(dated / source.name, generate_key_pair()[0])
    os.chmod(dated / source.name, pod["volumes"][0]["secret"]["defaultMode"])
    os.chown(dated / source.name, 0, group)
    (secret / "..data").symlink_to(dated.name)
    (secret / source.name).symlink_to(f"..data/{source.name}")
    keys.mkdir(parents=True)
    os.chown(keys, 0, group)
    os.chmod(keys, 0o2770)  # an emptyDir under fsGroup: the group may write, files keep the group
    command = [*init["command"][:-2], str(secret / source.name), str(keys / target.name)]
    as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", f"--groups={group}"]
    copied = subprocess.run([*as_user, *command], capture_output=True, text=True)
    assert copied.returncode == 0, copied.stderr
    load = "import sys; from governance.trust.keys import load_private_key; load_private_key(sys.argv[1])"
    python = [*as_user, sys.executable, "-c", load]
    loaded = subprocess.run([*python, str(keys / target.name)], capture_output=True, text=True, cwd=REPO)
    assert loaded.returncode == 0, loaded.stderr
    mounted = subprocess.run([*python, str(secret / source.name)], capture_output=True, text=True, cwd=REPO)
    assert mounted.returncode != 0 and "KeyFileError" in mounted.stderr, mounted.stderr


def test_the_dockerfile_passes_hadolint():
    linted = subprocess.run(
        [str(Path(sys.executable).with_name("hadolint")), "--no-color", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
