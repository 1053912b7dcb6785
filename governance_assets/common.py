"""What every governed model's assets share: keys, partitions, owners, tags, metadata helpers."""

from __future__ import annotations

import dagster as dg

from governance.config import GovernedModel
from governance.errors import GovernanceError
from governance.provenance import code_digest
from governance.registry import parse_version_key, version_key
from governance_assets.names import asset_path, versions_name


def key(model: GovernedModel, name: str) -> dg.AssetKey:
    """Asset keys are prefixed with the model name: `credit_scoring/trained_model`."""
    return dg.AssetKey(list(asset_path(model.name, name)))


def versions(model: GovernedModel) -> dg.DynamicPartitionsDefinition:
    """One dynamic partition per registered model version, keyed `<model>-v<N>`."""
    return dg.DynamicPartitionsDefinition(name=versions_name(model.name))


class PartitionError(GovernanceError):
    """A candidate run that names no version partition of its instance; refused before the step writes anything."""


def version_partition(context: dg.AssetExecutionContext, model: GovernedModel, latest: int) -> str:
    """The version partition (`<model>-v<N>`) this run trains, which must exist on the run's Dagster instance and
    be registered already (a re-run) or the next one after `latest`, the registry's latest version.

    A run without one (`dagster job execute -j <model>_candidate`, a re-execution or launch that names none),
    naming one nobody created (a partition tag, a typo, another instance's) or one typed into the UI that skips
    versions is refused with what to run instead: else the data steps would snapshot and ledger, and
    `trained_model` would train (and, for a partition nobody created, register an MLflow version) before the
    run failed."""
    how = (
        f"to train a version, run `govern train {model.name} --as PRINCIPAL` (it adds the next version's "
        f"partition and runs the candidate on this instance), or launch the {model.name}_request_candidate job "
        "with the Dagster daemon running"
    )
    if not context.has_partition_key:
        raise PartitionError(
            f"{context.job_name} run {context.run_id} names no version partition ({model.name}-v<N>); this step "
            f"wrote nothing; {how}"
        )
    key = context.partition_key
    if not context.instance.has_dynamic_partition(versions(model).name, key):
        raise PartitionError(
            f"partition {key!r} does not exist on this Dagster instance (the `dagster` CLI needs "
            f"DAGSTER_HOME=$GOVERN_HOME/dagster to use the state dir's); this step wrote nothing; {how}"
        )
    named, number = parse_version_key(key)
    if named != model.name or number > latest + 1:
        raise PartitionError(
            f"partition {key!r} is not a {model.name} version this run may train: the next one is "
            f"{version_key(model.name, latest + 1)} (versions are allocated in order); this step wrote nothing; {how}"
        )
    return key


# Who launched a run, as the launcher says: shown in the UI, never read as the requester.
REQUESTED_BY_TAG = "governance/requested_by"
# The digest of the signed candidate request a run was launched for (`govern train`): a pointer for people.
REQUEST_TAG = "governance/request"


def asset_code_version() -> str:
    """Every governed asset's Dagster code version: the digest of the code that computes assets
    (`governance.provenance.code_digest`). A materialization records it, so the UI shows which code produced each
    version and marks it stale ("has a new code version") once that code changes. One digest for all: which asset
    an edit to a shared module (config, digests, events) affects is not worth guessing, and guessing wrong would
    show an asset fresh that is not."""
    return f"sha256:{code_digest()[:16]}"


def owners(model: GovernedModel) -> list[str]:
    return [f"team:{model.owners.team}"]


def group(model: GovernedModel, stage: str) -> str:
    """Asset groups by lifecycle stage, per model (`release_credit_scoring`): the UI lists each stage apart. The
    model ends the name: the zoomed-out graph cuts a long name in the middle, which hid the model between prefix
    and stage (model_07_monitoring showed as `model…_monitoring` for every model)."""
    return f"{stage}_{model.name}"


def tags(model: GovernedModel, stage: str) -> dict[str, str]:
    return {"governance/model": model.name, "governance/risk_tier": model.risk_tier, "governance/stage": stage}


def md_table(header: list[str], rows: list[list]) -> dg.MetadataValue:
    """A Markdown table for asset metadata."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def figure(value: float, digits: int = 4) -> dg.MetadataValue:
    """A measured figure as the model card prints it (performance to 4 places, rates and fairness to 3)."""
    return dg.MetadataValue.float(round(float(value), digits))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value).replace("|", "\\|")


def actor(asset: str) -> str:
    """The principal an asset records its events as."""
    return f"system:{asset}"
