"""End to end through Dagster: the graph from raw data to model card, with real values checked."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from governance.data.generator import generate_applications
from governance.digests import file_md5, file_sha256
from governance.registry import PARTITION_TAG

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """Two candidate versions of the small model, run through Dagster once for the whole module."""
    from tests.helpers import SMALL_CONFIG, Lifecycle

    life = Lifecycle(tmp_path_factory.mktemp("pipeline") / "govern", SMALL_CONFIG)
    runs = [life.candidate(), life.candidate()]
    yield life, runs


def test_each_partition_is_one_mlflow_run_and_one_registered_version(two_versions):
    life, runs = two_versions
    assert [key for key, _ in runs] == ["credit_scoring-v1", "credit_scoring-v2"]
    assert all(result.success for _, result in runs)
    client = life.registry.client
    experiment = life.registry.experiment_id("credit_scoring")
    all_runs = client.search_runs([experiment])
    assert sorted(r.data.tags[PARTITION_TAG] for r in all_runs) == ["credit_scoring-v1", "credit_scoring-v2"]
    versions = life.registry.versions("credit_scoring")
    assert [v.version for v in versions] == [1, 2]
    for version, run in zip(versions, sorted(all_runs, key=lambda r: r.data.tags[PARTITION_TAG])):
        assert version.run_id == run.info.run_id
        assert version.tags[PARTITION_TAG] == version.key
        assert version.tags["governance.code_version"].startswith(("git:", "package:"))
        assert len(version.tags["governance.data_md5"]) == 32
        assert life.registry.artifact_digest(version) == version.artifact_sha256


def test_rematerializing_a_version_reuses_its_run(two_versions):
    life, _ = two_versions
    job = life.defs.resolve_job_def("credit_scoring_candidate")
    result = job.execute_in_process(instance=life.instance, partition_key="credit_scoring-v1")
    assert result.success
    assert len(life.registry.client.search_runs([life.registry.experiment_id("credit_scoring")])) == 2
    assert life.registry.latest_version("credit_scoring") == 2


def test_dvc_md5_is_the_snapshot_files_md5(two_versions):
    life, runs = two_versions
    snapshot = runs[0][1].output_for_node("credit_scoring__applications")
    dvc_file = life.settings.resolve(snapshot["dvc_file"])  # recorded relative to the state dir
    data_file = dvc_file.with_name(dvc_file.name.removesuffix(".dvc"))
    assert file_md5(data_file) == snapshot["md5"] == file_md5(life.settings.resolve(snapshot["cache_path"]))
    assert (life.settings.dvc_remote / "files" / "md5" / snapshot["md5"][:2] / snapshot["md5"][2:]).is_file()
    metadata = life.materialized("credit_scoring", "applications")[0].asset_materialization.metadata
    assert metadata["dvc_md5"].value == snapshot["md5"]
    trained = runs[0][1].output_for_node("credit_scoring__trained_model")
    assert trained["data_md5"] == snapshot["md5"]


def test_fairness_figures_match_a_hand_computation(two_versions):
    life, runs = two_versions
    result = runs[0][1]
    trained = result.output_for_node("credit_scoring__trained_model")
    report = json.loads((life.settings.model_dir("credit_scoring", runs[0][0]) / "fairness.json").read_bytes())
    model = life.config.model("credit_scoring")
    frame = generate_applications(6000, seed=7)
    from governance.training import split

    test = split(model, frame).test.reset_index(drop=True)
    approved = np.load(trained["scores_path"]) < model.decisioning.approve_below
    good = (test["default"] == 0).to_numpy()
    sex = test["sex"].astype(str).to_numpy()
    rate = {g: approved[sex == g].mean() for g in ("F", "M")}
    tpr = {g: approved[(sex == g) & good].mean() for g in ("F", "M")}
    fpr = {g: approved[(sex == g) & ~good].mean() for g in ("F", "M")}
    figures = report["attributes"]["sex"]
    assert figures["groups"]["F"]["selection_rate"] == pytest.approx(rate["F"])
    assert figures["groups"]["F"]["disparate_impact"] == pytest.approx(rate["F"] / rate["M"])
    assert figures["demographic_parity_difference"] == pytest.approx(abs(rate["F"] - rate["M"]))
    assert figures["equalized_odds_difference"] == pytest.approx(
        max(abs(tpr["F"] - tpr["M"]), abs(fpr["F"] - fpr["M"]))
    )
    low, high = figures["groups"]["F"]["disparate_impact_ci"]
    assert low < figures["groups"]["F"]["disparate_impact"] < high


def test_model_card_names_its_evidence(two_versions):
    life, runs = two_versions
    result = runs[1][1]
    card = result.output_for_node("credit_scoring__model_card")
    trained = result.output_for_node("credit_scoring__trained_model")
    html = Path(card["html_path"]).read_text()
    markdown = Path(card["markdown_path"]).read_text()
    assert card["complete"] and file_sha256(card["html_path"]) == card["html_sha256"]
    for fact in (trained["data_md5"], trained["run_id"], trained["artifact_sha256"], "passed"):
        assert fact in markdown and fact in html
    stored = life.settings.model_dir("credit_scoring", runs[1][0])
    for name in (
        "performance",
        "fairness",
        "explainability",
    ):  # each report's file, as the reports IO manager stored it
        assert file_sha256(stored / f"{name}.json") in markdown
    assert html.count("data:image/svg+xml;base64,") == 4
    metadata = life.materialized("credit_scoring", "model_card", "credit_scoring-v2")[0].asset_materialization.metadata
    assert "## Fairness" in metadata["card"].value
    explained = json.loads((stored / "explainability.json").read_bytes())
    top = explained["importance"][0]["feature"]  # the monitoring section: what would fire, the top feature included
    assert (
        "## Monitoring" in markdown and "| monitoring.score_drift_severe | contain | score_psi >= 0.2500 |" in markdown
    )
    watched = markdown.split("## Monitoring")[1].split("## Waivers")[0]
    assert f"| 1 | {top} |" in watched
    assert "| monitoring.decision_rate_drift | retrain | decision_shift_ci_low_max > 0.0500 |" in watched
    assert all(f"| {outcome} | " in watched for outcome in ("approve", "refer", "decline"))
    withheld = explained["withheld_reasons"]  # no flagged proxy, no protected feature: nothing to withhold
    assert explained["proxy_flags"] == [] and withheld["applications"] == withheld["reasons"] == 0
    assert withheld["adverse"] > 0
    assert (
        f"On the {explained['sample_rows']} explained test applications, {withheld['adverse']} would be declined or "
        "referred; none of them would have given a withheld feature as a principal reason." in markdown
    )


def test_metadata_a_reviewer_needs_is_on_each_asset(two_versions):
    life, _ = two_versions
    expected = {
        ("validated_applications", None): {"passed", "expectations", "failures", "result_digest"},
        ("trained_model", "credit_scoring-v1"): {"mlflow_run", "artifact_sha256", "dvc_md5", "code_version"},
        ("performance_report", "credit_scoring-v1"): {"auc", "gini", "ks", "by_group", "sha256"},
        ("fairness_report", "credit_scoring-v1"): {"groups", "sha256"},
        ("explainability_report", "credit_scoring-v1"): {"top_features", "proxy_flags"},
    }
    for (asset, partition), keys in expected.items():
        metadata = life.materialized("credit_scoring", asset, partition)[0].asset_materialization.metadata
        assert keys <= set(metadata), f"{asset} lacks {keys - set(metadata)}"


def test_a_stored_report_edited_between_materializations_stops_the_step_that_reads_it(two_versions):
    """A report file is a cache of what its asset produced, never an authority: edited in the state dir after its
    materialization, the next step that reads it (the model card) fails naming the asset, the partition, the file
    and both digests, and publishes nothing; the bytes the materialization recorded, or a new materialization of
    the report, let it run again."""
    import dagster as dg

    from governance import events
    from governance.digests import canonical_json
    from resources import governance_resources

    life, runs = two_versions
    version = runs[0][0]
    path = life.settings.model_dir("credit_scoring", version) / "fairness.json"
    original = path.read_bytes()
    metadata = life.materialized("credit_scoring", "fairness_report", version)[0].asset_materialization.metadata
    recorded = metadata["sha256"].value
    published = life.services.ledger.latest(events.FairnessReportPublished, model="credit_scoring", version=version)
    assert recorded == file_sha256(path) == published.report  # the file, its materialization and the ledger agree

    def card(*also: str):
        return dg.materialize(
            life.defs.assets,
            selection=[dg.AssetKey(["credit_scoring", name]) for name in (*also, "model_card")],
            partition_key=version,
            instance=life.instance,
            resources=governance_resources(life.settings),
            raise_on_error=False,
        )

    cards = len(life.services.ledger.events(events.CardPublished, model="credit_scoring", version=version))
    report = json.loads(original)
    report["attributes"]["sex"]["groups"]["F"]["disparate_impact"] = 1.0  # a disparity edited to look fair
    path.write_bytes(canonical_json(report))
    edited = file_sha256(path)
    try:
        tampered = card()
        assert not tampered.success
        message = step_failure(tampered)
        for named in ("credit_scoring/fairness_report", f"partition {version}", str(path), recorded, edited):
            assert named in message, f"{named!r} not in {message!r}"
        assert "changed after it was written" in message
        assert len(life.services.ledger.events(events.CardPublished, model="credit_scoring", version=version)) == cards
    finally:
        path.write_bytes(original)
    assert card().success  # the bytes the materialization recorded: the card reads them again

    # A materialization reported by hand records no digest: nothing says what the file should hold.
    life.instance.report_runless_asset_event(
        dg.AssetMaterialization(dg.AssetKey(["credit_scoring", "fairness_report"]), partition=version)
    )
    unrecorded = card()
    assert not unrecorded.success and "no materialization recorded the SHA-256" in step_failure(unrecorded)
    assert card("fairness_report").success  # materialized again, as the message says: read again


class _Planted:
    """A pickle that runs code when loaded: here, harmlessly, it creates the directory `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def rerun(life, version: str, asset: str):
    """A run of one asset of `version` in its candidate job, as launched from the UI (no key)."""
    import dagster as dg

    from jobs import candidate_job_name

    job = life.defs.resolve_job_def(candidate_job_name("credit_scoring"))
    return job.execute_in_process(
        instance=life.instance,
        partition_key=version,
        asset_selection=[dg.AssetKey(["credit_scoring", asset])],
        raise_on_error=False,
    )


def step_failure(result) -> str:
    """The failed step's error messages, its causes' included."""
    [step] = [event for event in result.all_events if event.is_step_failure]
    error, messages = step.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def test_a_pickle_planted_where_dagster_stored_outputs_is_never_loaded(two_versions, tmp_path):
    """Dagster's default IO manager pickled outputs into the instance's storage, in the state dir; a run worker
    holds the system key. No output of the code location is stored there now, and a pickle planted where
    `trained_model`'s was is never read by a run of a downstream asset."""
    life, runs = two_versions
    version = runs[0][0]
    storage = Path(life.instance.storage_directory()) / "credit_scoring"
    marker = tmp_path / "unpickled"
    planted = storage / "trained_model" / version
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(pickle.dumps(_Planted(marker)))

    result = rerun(life, version, "performance_report")

    assert not marker.exists(), "a run unpickled the planted file"
    assert result.success
    assert sorted(storage.rglob("*")) == [planted.parent, planted]  # no output of the graph was stored there


@pytest.mark.parametrize(
    ("asset", "field", "downstream"),
    [("trained_model", "artifact_sha256", "performance_report"), ("validated_applications", "md5", "trained_model")],
)
def test_an_edited_json_output_is_refused_naming_its_file(two_versions, asset, field, downstream):
    """Every output an asset hands another is a JSON document whose digest its materialization recorded: edited
    in the state dir, the step that reads it fails naming the asset and the file, and reads nothing."""
    from governance.digests import canonical_json

    life, runs = two_versions
    version = runs[0][0]
    partition = version if asset == "trained_model" else None
    path = life.settings.model_dir("credit_scoring", partition) / f"{asset}.json"
    recorded = life.materialized("credit_scoring", asset, partition)[0].asset_materialization.metadata["sha256"]
    original = path.read_bytes()
    assert file_sha256(path) == recorded.value
    document = json.loads(original)
    document[field] = "0" * len(document[field])
    path.write_bytes(canonical_json(document))
    try:
        result = rerun(life, version, downstream)
    finally:
        path.write_bytes(original)
    assert not result.success
    message = step_failure(result)
    for named in (f"credit_scoring/{asset}", str(path), "changed after it was written"):
        assert named in message, f"{named!r} not in {message!r}"
