"""`trained_model`: one MLflow run and one registered model version per partition."""

import dagster as dg
import numpy as np

from governance import events, training
from governance.config import GovernedModel
from governance.data.source import read_snapshot
from governance.digests import file_sha256
from governance.errors import GovernanceError
from governance.metrics.performance import discrimination
from governance.provenance import code_version
from governance.registry import ModelRegistry, RegisteredVersion, parse_version_key
from governance.settings import Settings
from governance_assets.common import (
    actor,
    asset_code_version,
    figure,
    group,
    key,
    owners,
    tags,
    version_partition,
    versions,
)
from resources import GovernanceResource, LedgerResource, RegistryResource
from resources.reports import stored_as


def training_assets(model: GovernedModel) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=key(model, "trained_model"),
        group_name=group(model, "training"),
        owners=owners(model),
        code_version=asset_code_version(),
        partitions_def=versions(model),
        kinds={"mlflow", "scikit-learn"},
        tags=tags(model, "training"),
        ins={"validated": dg.AssetIn(key(model, "validated_applications"))},
        **stored_as("trained_model.json"),
        description="The model version: trained on the validated snapshot, logged to one MLflow run and "
        "registered as the MLflow model version the partition key names.",
    )
    def trained_model(
        context: dg.AssetExecutionContext,
        governance: GovernanceResource,
        registry: RegistryResource,
        ledger: LedgerResource,
        validated: dict,
    ) -> dg.Output[dict]:
        settings = governance.settings
        latest = registry.store.latest_version(model.name)
        number = parse_version_key(version_partition(context, model, latest))[1]
        if latest >= number:
            context.log.info(f"{context.partition_key} is already registered: re-recording it, not retraining")
            registered = registry.store.version(model.name, number)
            pipeline = registry.store.load(registered, registered.artifact_sha256)
            md5, links = registered.tags["governance.data_md5"], {}
            test = training.split(model, read_snapshot(settings, model, md5)).test
        else:
            md5 = _validated_md5(validated)
            split = training.split(model, read_snapshot(settings, model, md5))
            registered, pipeline = _train_and_register(context, registry.store, model, md5, validated, split)
            test = split.test
            links = ledger.record(
                events.ModelRegistered(
                    actor=actor("trained_model"),
                    model=model.name,
                    version=registered.key,
                    artifact=registered.artifact_sha256,
                    validation=validated["validation"]["digest"],
                    dvc_md5=md5,
                    mlflow_run_id=registered.run_id,
                    registered_version=number,
                    code_version=registered.tags["governance.code_version"],
                    params=training.params_of(model),
                ),
            )
        result = _record(settings, model, registered, pipeline, md5, test)
        return dg.Output(
            result,
            data_version=dg.DataVersion(registered.artifact_sha256),
            metadata={
                **links,
                "registered_version": dg.MetadataValue.int(number),
                "mlflow_run_id": registered.run_id,
                "mlflow_run": dg.MetadataValue.url(
                    f"{settings.mlflow_ui_url}/#/experiments/"
                    f"{registry.store.experiment_id(model.name)}/runs/{registered.run_id}"
                ),
                "artifact_sha256": registered.artifact_sha256,
                "dvc_md5": md5,
                "code_version": result["code_version"],
                "test_rows": result["test_rows"],
                "test_auc": figure(result["test_auc"]),
            },
        )

    return [trained_model]


def _train_and_register(
    context, registry: ModelRegistry, model: GovernedModel, md5: str, validated: dict, split: training.Split
) -> tuple[RegisteredVersion, object]:
    version_tags = {
        "governance.data_md5": md5,
        "governance.code_version": code_version(),
        "governance.validation_digest": validated["validation"]["digest"],
    }
    run_id = registry.start_run(
        model.name, context.partition_key, tags={**version_tags, "dagster.run_id": context.run_id}
    )
    try:
        pipeline = training.fit(model, split.train)
        registry.log(
            run_id,
            params=training.params_of(model),
            metrics={"train_rows": len(split.train), "test_rows": len(split.test)},
        )
        registered = registry.register(
            model.name,
            context.partition_key,
            run_id,
            pipeline,
            training.TRUSTED_TYPES[model.estimator.kind],
            tags=version_tags,
            sample=training.feature_frame(split.train.head(20), model.feature_columns),
            description=f"{context.partition_key}: trained on data snapshot {md5} (DVC md5) by Dagster run "
            f"{context.run_id}; awaiting its release gate and a signed approval.",
        )
    except Exception:
        registry.finish_run(run_id, ok=False)
        raise
    registry.finish_run(run_id, ok=True)
    return registered, pipeline


def _record(settings: Settings, model: GovernedModel, registered: RegisteredVersion, pipeline, md5: str, test) -> dict:
    """Score the version's test set once; the evaluation assets read these rows and scores."""
    scores = training.score(pipeline, model, test)
    path = settings.model_dir(model.name, registered.key) / "test_scores.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, scores)
    test_path = path.with_name("test_set.parquet")  # in the state dir only: it holds applicants' rows
    test.reset_index(drop=True).to_parquet(test_path, index=False)
    metrics = discrimination(training.unfavourable(model, test), scores)
    return {
        "key": registered.key,
        "model": model.name,
        "version": registered.version,
        "run_id": registered.run_id,
        "artifact_sha256": registered.artifact_sha256,
        "data_md5": md5,
        "validation_digest": registered.tags.get("governance.validation_digest"),
        "code_version": registered.tags.get("governance.code_version", "unknown"),
        "test_rows": len(test),
        "test_auc": metrics["auc"],
        "scores_path": str(path),
        "scores_sha256": file_sha256(path),
        "test_path": str(test_path),
        "test_sha256": file_sha256(test_path),
        "trained_by": list(model.owners.data_scientists),
    }


def _validated_md5(validated: dict) -> str:
    """The md5 of data that passed validation (reading it re-checks the bytes against the md5)."""
    md5 = validated["md5"]
    if not validated["validation"]["passed"]:
        failures = "; ".join(validated["validation"]["failures"][:3])
        raise GovernanceError(f"data snapshot {md5} failed validation ({failures}); no model is trained on it")
    return md5
