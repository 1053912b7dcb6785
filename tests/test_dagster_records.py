"""`govern status` reads Dagster's storage without Dagster (`programs.dagster_records`): every answer is the one
Dagster's own instance gives on the same storage, SQLite and PostgreSQL, for partitions, newest materializations
(after a re-run, a wipe and a wipe followed by a new materialization) and candidate runs (succeeded, failed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from governance.errors import GovernanceError
from governance.settings import Settings
from governance.state import dagster_instance_config
from governance_assets.names import asset_path, candidate_job_name, versions_name
from programs.dagster_records import DagsterRecords
from programs.failures import run_failures

MODELS = ("model_a", "model_b")
ASSETS = ("applications", "trained_model")
FAILING = "-v3"  # the version whose candidate run fails
SCALARS = (dg.TextMetadataValue, dg.BoolMetadataValue, dg.IntMetadataValue, dg.FloatMetadataValue)


def definitions(model: str) -> dg.Definitions:
    """A model's data asset, its version-partitioned asset and its candidate job, named as the governed ones."""

    @dg.asset(key=list(asset_path(model, "applications")))
    def applications() -> dg.MaterializeResult:
        metadata = {"dvc_md5": "d41d8cd98f00b204", "passed": True, "rows": 5000, "auc": 0.81}
        return dg.MaterializeResult(metadata={**metadata, "note": dg.MetadataValue.md("# not a scalar")})

    @dg.asset(
        key=list(asset_path(model, "trained_model")),
        partitions_def=dg.DynamicPartitionsDefinition(name=versions_name(model)),
    )
    def trained_model(context) -> dg.MaterializeResult:  # unannotated: Dagster refuses a string annotation
        if context.partition_key.endswith(FAILING):
            raise ValueError("clients.csv: data file not found")
        return dg.MaterializeResult(metadata={"champion": context.partition_key, "complete": False})

    job = dg.define_asset_job(candidate_job_name(model), selection=[trained_model.key])
    return dg.Definitions(assets=[applications, trained_model], jobs=[job])


def record_history(instance: dg.DagsterInstance, model: str, versions: list[str]) -> None:
    """The data asset materialized twice, then each version's candidate run (the first one twice)."""
    defs = definitions(model)
    instance.add_dynamic_partitions(versions_name(model), versions)
    for _ in range(2):
        data = defs.resolve_assets_def(list(asset_path(model, "applications")))
        assert dg.materialize([data], instance=instance).success
    job = defs.resolve_job_def(candidate_job_name(model))
    for version in [versions[0], *versions]:
        job.execute_in_process(instance=instance, partition_key=version, raise_on_error=False)


def open_dagster(settings: Settings) -> dg.DagsterInstance:
    """The state dir's Dagster instance on the storage `govern` configures (the dagster.yaml it writes)."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    (settings.dagster_home / "dagster.yaml").write_text(yaml.safe_dump(dagster_instance_config(settings)))
    return dg.DagsterInstance.from_config(str(settings.dagster_home))


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path: Path, monkeypatch) -> Iterator[Settings]:
    url = request.getfixturevalue("empty_postgres_url") if request.param == "postgresql" else None
    if url:
        monkeypatch.setenv("GOVERN_DAGSTER_DATABASE_URL", url)  # the dagster.yaml names the variable
    yield Settings(home=tmp_path / "govern", config_path=tmp_path / "governance.yaml", dagster_database_url=url)


def _dagsters_latest(instance: dg.DagsterInstance, model: str, asset: str, partition: str | None) -> tuple | None:
    asked = dg.AssetRecordsFilter(
        asset_key=dg.AssetKey(list(asset_path(model, asset))), asset_partitions=[partition] if partition else None
    )
    found = instance.fetch_materializations(asked, limit=1).records
    assert instance.fetch_failed_materializations(asked, limit=1).records == []  # so status shows none (and reads none)
    if not found:
        return None
    metadata = found[0].asset_materialization.metadata
    return found[0].timestamp, found[0].run_id, {k: v.value for k, v in metadata.items() if isinstance(v, SCALARS)}


def _ours(records: DagsterRecords, model: str, asset: str, partition: str | None) -> tuple | None:
    found = records.latest(model, asset, partition)
    return None if found is None else (found.timestamp, found.run_id, found.metadata)


def _dagsters_run(instance: dg.DagsterInstance, model: str, version: str) -> tuple[str, str] | None:
    asked = dg.RunsFilter(job_name=candidate_job_name(model), tags={"dagster/partition": version})
    runs = instance.get_runs(asked, limit=1)
    return (runs[0].run_id, runs[0].status.value) if runs else None


def test_status_reads_of_dagsters_storage_are_dagsters_own(storage: Settings):
    versions = {model: [f"{model}-v{n}" for n in (1, 2, 3)] for model in MODELS}
    with open_dagster(storage) as instance:
        for model in MODELS:
            record_history(instance, model, versions[model])
        instance.wipe_assets([dg.AssetKey(list(asset_path("model_a", "applications")))])  # nothing since
        instance.wipe_assets([dg.AssetKey(list(asset_path("model_b", "trained_model")))])
        job = definitions("model_b").resolve_job_def(candidate_job_name("model_b"))
        assert job.execute_in_process(instance=instance, partition_key="model_b-v2").success  # after the wipe
        asked = [*MODELS, "model_never_run"]
        with DagsterRecords(storage, asked, ASSETS) as records:
            for model in asked:
                assert records.versions(model) == instance.get_dynamic_partitions(versions_name(model))
                for asset in ASSETS:
                    for partition in [None, *versions.get(model, []), "model_a-v9"]:
                        expected = _dagsters_latest(instance, model, asset, partition)
                        assert _ours(records, model, asset, partition) == expected, (model, asset, partition)
            for model in MODELS:
                for version in versions[model]:
                    assert records.latest_run(candidate_job_name(model), version) == _dagsters_run(
                        instance, model, version
                    )
            failed, status = records.latest_run(candidate_job_name("model_a"), f"model_a{FAILING}") or ("", "")
            assert status == "FAILURE"
            assert records.run_failures(failed) == run_failures(instance, failed) != []
            # the history has what the comparisons above are meant to cover
            assert records.latest("model_a", "applications", None) is None  # wiped
            assert records.latest("model_b", "trained_model", "model_b-v1") is None  # wiped, not run again
            assert records.latest("model_b", "trained_model", None) == records.latest(
                "model_b", "trained_model", "model_b-v2"
            )
            assert records.latest("model_a", "trained_model", "model_a-v1").metadata == {
                "champion": "model_a-v1",
                "complete": False,
            }
            assert records.latest("model_b", "applications", None).metadata["rows"] == 5000


def test_a_state_dir_dagster_never_wrote_has_no_records(tmp_path):
    settings = Settings(home=tmp_path / "govern", config_path=tmp_path / "governance.yaml")
    with DagsterRecords(settings, ["model_a"], ASSETS) as records:
        assert records.versions("model_a") == [] and records.latest("model_a", "applications", None) is None
        assert records.latest_run(candidate_job_name("model_a"), "model_a-v1") is None
    assert not settings.dagster_home.exists()  # reading created nothing


def test_a_dagster_yaml_naming_another_storage_says_what_rewrites_it(tmp_path):
    """A state dir from before the storage classes moved names them by their old module."""
    settings = Settings(home=tmp_path / "govern", config_path=tmp_path / "governance.yaml")
    settings.dagster_home.mkdir(parents=True)
    old = {"module": "governance_assets.storage", "class": "PooledSqliteStorage", "config": {"base_dir": "."}}
    (settings.dagster_home / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"custom": old}}))
    with pytest.raises(GovernanceError, match="`govern init` writes it again"):
        DagsterRecords(settings, ["model_a"], ASSETS)
