"""What Dagster shows of a version's provenance is the ledger's: each asset's data version is the digest its ledger
entry names, its code version the digest of the governance code, and a new data snapshot makes Dagster report what
it feeds stale (issue 19, item 4). Staleness is Dagster's own resolver, the one behind the UI's "stale" badges."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.definitions.data_version import CODE_VERSION_TAG, CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from governance import events
from governance_assets.common import asset_code_version
from jobs import candidate_job_name
from jobs.candidates import next_candidate_key

pytestmark = pytest.mark.slow
MODEL = "credit_scoring"


def asset(name: str) -> dg.AssetKey:
    return dg.AssetKey([MODEL, name])


def resolver(life) -> CachingStaleStatusResolver:
    """What the UI asks (a resolver caches, so one per question)."""
    return CachingStaleStatusResolver(
        life.instance, life.defs.resolve_asset_graph(), LoadingContextForTest(life.instance)
    )


def snapshot_again(life, seed: int, *names: str) -> None:
    """A new data snapshot (and its validation, when named), as the next candidate run's data steps take it."""
    model = life.config.model(MODEL)
    result = life.defs.resolve_job_def(candidate_job_name(MODEL)).execute_in_process(
        instance=life.instance,
        partition_key=next_candidate_key(life.instance, life.registry, model),
        asset_selection=[asset(name) for name in names],
        run_config={"ops": {f"{MODEL}__applications": {"config": {"seed": seed}}}},
    )
    assert result.success


def test_data_versions_are_the_ledger_s_digests_and_a_new_snapshot_makes_the_version_stale(lifecycle):
    life = lifecycle()
    version, result = life.candidate()
    assert result.success
    ledger = life.services.ledger
    digests = {
        (asset("applications"), None): ledger.latest(events.DataSnapshotted, model=MODEL).data,
        (asset("validated_applications"), None): ledger.latest(events.DataValidated, model=MODEL).validation,
        (asset("trained_model"), version): ledger.latest(events.ModelRegistered, model=MODEL).artifact,
        (asset("fairness_report"), version): ledger.latest(events.FairnessReportPublished, model=MODEL).report,
        (asset("model_card"), version): ledger.latest(events.CardPublished, model=MODEL).html,
    }
    shown = resolver(life)
    assert {at: shown.get_current_data_version(*at).value for at in digests} == digests
    assert {at: shown.get_status(*at) for at in digests} == dict.fromkeys(digests, StaleStatus.FRESH)
    (fairness,) = life.materialized(MODEL, "fairness_report", version)[:1]
    recorded = fairness.asset_materialization
    assert recorded.tags[CODE_VERSION_TAG] == asset_code_version()
    assert recorded.metadata["sha256"].value == digests[(asset("fairness_report"), version)]  # the stored file's

    snapshot_again(life, 8, "applications")
    shown = resolver(life)
    assert shown.get_status(asset("validated_applications")) == StaleStatus.STALE
    (cause,) = shown.get_stale_causes(asset("validated_applications"))
    assert (cause.dependency.asset_key, cause.reason) == (asset("applications"), "has a new dependency data version")
    new_snapshot = ledger.latest(events.DataSnapshotted, model=MODEL).data
    assert shown.get_current_data_version(asset("applications")).value == new_snapshot
    assert new_snapshot != digests[(asset("applications"), None)]

    snapshot_again(life, 8, "applications", "validated_applications")
    shown = resolver(life)
    assert shown.get_current_data_version(asset("applications")).value == new_snapshot  # same data, same version
    assert shown.get_status(asset("validated_applications")) == StaleStatus.FRESH
    assert shown.get_status(asset("trained_model"), version) == StaleStatus.STALE
    (cause,) = shown.get_stale_causes(asset("trained_model"), version)
    assert cause.dependency.asset_key == asset("validated_applications")
    assert shown.get_status(asset("fairness_report"), version) == StaleStatus.FRESH  # its model did not change
