"""A candidate run launched with Dagster's own tools that names no version partition, or one the instance does not
have, is refused by its first step with what to run instead, and nothing is written.

`dagster job execute -m definitions -j credit_scoring_candidate` names none; `--tags '{"dagster/partition": ...}'`
can name one nobody created. Before the refusal, the data steps snapshotted and ledgered, and with a partition
tag `trained_model` registered an MLflow version before Dagster failed to store its output.
"""

from pathlib import Path

import dagster as dg
import pytest

from programs.failures import run_failures
from tests.helpers import SMALL_CONFIG, Lifecycle

MODEL = "credit_scoring"
HOW = (
    f"to train a version, run `govern train {MODEL} --as PRINCIPAL` (it adds the next version's partition and "
    f"runs the candidate on this instance), or launch the {MODEL}_request_candidate job with the Dagster daemon "
    "running"
)


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    """One state dir for both cases: a refused run leaves it as it was (which each case checks)."""
    return Lifecycle(tmp_path_factory.mktemp("headless") / "govern", SMALL_CONFIG)


def written(home: Path) -> dict[str, int]:
    """Every file of the state dir but the Dagster instance's (which records the refused run), with its size."""
    return {
        str(p.relative_to(home)): p.stat().st_size for p in home.rglob("*") if p.is_file() and "dagster" not in p.parts
    }


@pytest.mark.parametrize(
    "tags, refusal",
    [
        ({}, f"{MODEL}_candidate run {{run_id}} names no version partition ({MODEL}-v<N>); this step wrote nothing"),
        (
            {"dagster/partition": f"{MODEL}-v1"},
            f"partition '{MODEL}-v1' does not exist on this Dagster instance (the `dagster` CLI needs "
            "DAGSTER_HOME=$GOVERN_HOME/dagster to use the state dir's); this step wrote nothing",
        ),
    ],
    ids=["no_partition", "partition_not_created"],
)
def test_a_candidate_naming_no_version_of_the_instance_is_refused_before_anything_is_written(tags, refusal, life):
    before = written(life.settings.home)
    job = life.defs.resolve_job_def(f"{MODEL}_candidate")
    result = job.execute_in_process(instance=life.instance, tags=tags, raise_on_error=False)
    assert not result.success
    started = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    assert started == [f"{MODEL}__applications"]
    reason = f"{MODEL}/applications: PartitionError: {refusal.format(run_id=result.run_id)}; {HOW}"
    assert run_failures(life.instance, result.run_id) == [reason]
    assert written(life.settings.home) == before
    assert life.services.ledger.size() == 0 and life.registry.latest_version(MODEL) == 0
    assert life.instance.get_dynamic_partitions(f"{MODEL}_versions") == []
    assert not life.materialized(MODEL, "applications")


def test_trained_model_refuses_a_partition_the_instance_does_not_have_before_it_trains(lifecycle):
    """A run that reaches `trained_model` without the data steps (an asset or op selection, a re-execution) is
    refused there as well: it would train and register an MLflow version before Dagster failed to store it."""
    life = lifecycle()
    partitions, version = f"{MODEL}_versions", f"{MODEL}-v1"
    job = life.defs.resolve_job_def(f"{MODEL}_candidate")
    life.instance.add_dynamic_partitions(partitions, [version])
    data = [dg.AssetKey([MODEL, "applications"]), dg.AssetKey([MODEL, "validated_applications"])]
    assert job.execute_in_process(instance=life.instance, partition_key=version, asset_selection=data).success
    life.instance.delete_dynamic_partition(partitions, version)
    ledgered = life.services.ledger.size()
    result = job.execute_in_process(
        instance=life.instance,
        tags={"dagster/partition": version},
        asset_selection=[dg.AssetKey([MODEL, "trained_model"])],
        raise_on_error=False,
    )
    [failure] = run_failures(life.instance, result.run_id)
    assert failure.startswith(f"{MODEL}/trained_model: PartitionError: partition '{version}' does not exist")
    assert life.registry.latest_version(MODEL) == 0 and life.services.ledger.size() == ledgered


def test_a_partition_typed_into_the_ui_that_skips_versions_is_refused_before_anything_is_written(life):
    """`credit_scoring-v3` added by hand (the UI's "Add a partition") while v1 is next: refused by the first step,
    before a snapshot, a ledger entry or a training run (before, `trained_model` trained it and the registry
    refused only to register it)."""
    partitions, typo = f"{MODEL}_versions", f"{MODEL}-v3"
    life.instance.add_dynamic_partitions(partitions, [typo])
    try:
        before = written(life.settings.home)
        job = life.defs.resolve_job_def(f"{MODEL}_candidate")
        result = job.execute_in_process(instance=life.instance, partition_key=typo, raise_on_error=False)
        refusal = (
            f"{MODEL}/applications: PartitionError: partition '{typo}' is not a {MODEL} version this run may "
            f"train: the next one is {MODEL}-v1 (versions are allocated in order); this step wrote nothing; {HOW}"
        )
        assert run_failures(life.instance, result.run_id) == [refusal]
        assert written(life.settings.home) == before and life.services.ledger.size() == 0
    finally:
        life.instance.delete_dynamic_partition(partitions, typo)
