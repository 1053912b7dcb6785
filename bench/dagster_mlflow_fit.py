"""Does dagster-mlflow fit what governance-assets needs of an MLflow run? (issue 19: use it unless a measured
defect rules it out)

    .venv/bin/python bench/dagster_mlflow_fit.py

A partitioned job like the candidate job (a training op, then a report op) with dagster-mlflow's
`mlflow_tracking` resource and `end_mlflow_on_run_finished` hook runs, on a new MLflow store, the way a version
is made: an attempt whose training fails, its retry, then a re-run of the training op alone. It prints what
governance-assets relies on and what the library does instead. Baseline: our own `ModelRegistry.start_run`, the
same three attempts on the same key.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import dagster as dg
import mlflow
from dagster_mlflow import end_mlflow_on_run_finished, mlflow_tracking

from governance.registry import ModelRegistry

KEY = "m-v1"
SECRET = "not-a-real-secret"


@dg.op(required_resource_keys={"mlflow"})
def train(context) -> dict:
    context.resources.mlflow.log_params({"key": context.partition_key})
    if os.environ.get("FAIL_TRAINING") == "1":
        raise RuntimeError("training failed")
    return {"version": context.partition_key}


@dg.op(required_resource_keys={"mlflow"})
def report(context, trained: dict) -> None:
    context.resources.mlflow.log_metric("auc", 0.8)


@end_mlflow_on_run_finished
@dg.job(resource_defs={"mlflow": mlflow_tracking}, partitions_def=dg.StaticPartitionsDefinition([KEY]))
def candidate():
    report(train())


def main() -> None:
    logging.disable(logging.INFO)
    warnings.simplefilter("ignore")  # the library is beta: its warnings would bury the figures
    home = Path(tempfile.mkdtemp(prefix="dagster-mlflow-fit-"))
    uri = f"sqlite:///{home}/mlflow.db"
    config = {"experiment_name": "governance/m", "mlflow_tracking_uri": uri, "env": {"AWS_SECRET_ACCESS_KEY": SECRET}}
    run_config = {"resources": {"mlflow": {"config": config}}}
    instance = dg.DagsterInstance.ephemeral()
    runs = []
    for failing, selection in (("1", None), ("0", None), ("0", ["train"])):
        os.environ["FAIL_TRAINING"] = failing
        runs.append(
            candidate.execute_in_process(
                run_config=run_config,
                partition_key=KEY,
                instance=instance,
                op_selection=selection,
                raise_on_error=False,
            )
        )
    client = mlflow.tracking.MlflowClient(uri)
    made = client.search_runs([client.get_experiment_by_name("governance/m").experiment_id])
    stored = str(instance.get_run_by_id(runs[-1].run_id).run_config)

    ours = ModelRegistry(f"sqlite:///{home}/ours.db", (home / "artifacts").as_uri(), home)
    started = {ours.start_run("m", KEY, {}) for _ in range(3)}

    print(f"MLflow runs for one version after 3 attempts: dagster-mlflow {len(made)}, ours {len(started)} (need 1)")
    print(
        "  dagster-mlflow:",
        ", ".join(f"{r.info.status} (Dagster run {r.data.tags['dagster_run_id'][:8]})" for r in made),
    )
    print(f"process-wide tracking URI set by the resource: {mlflow.get_tracking_uri() == uri}")
    print(f"credential put in the process environment: {os.environ.get('AWS_SECRET_ACCESS_KEY') == SECRET}")
    print(f"credential stored in Dagster's run config (shown in the UI): {SECRET in stored}")


if __name__ == "__main__":
    main()
