"""`applications` (a DVC-versioned snapshot) and `validated_applications` (Great Expectations)."""

import json
from pathlib import Path

import dagster as dg

from governance import events
from governance.config import GovernedModel
from governance.data import snapshot as snapshots
from governance.data.source import generate, read_dataset, read_snapshot
from governance.data.validation import save_validation, validate
from governance.errors import GovernanceError
from governance_assets.common import (
    actor,
    asset_code_version,
    group,
    key,
    md_table,
    owners,
    tags,
    version_partition,
)
from resources import GovernanceResource, LedgerResource
from resources.reports import stored_as
from speedups import importing_meanwhile

CONTRACT_CHECK = "data_contract"


class GeneratorScenario(dg.Config):
    """Run-time overrides of the built-in generator's knobs (scenarios, demos); recorded in the snapshot's source."""

    seed: int | None = None
    bias: float | None = None
    drift: float | None = None
    proxy: float | None = None


def data_assets(model: GovernedModel) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=key(model, "applications"),
        group_name=group(model, "data"),
        owners=owners(model),
        code_version=asset_code_version(),
        kinds={"dvc", "parquet"},
        tags=tags(model, "data"),
        **stored_as("applications.json"),
        description=f"Snapshot of {model.name}'s source data, versioned with DVC (md5 in metadata).",
    )
    def applications(
        context: dg.AssetExecutionContext,
        config: GeneratorScenario,
        governance: GovernanceResource,
        ledger: LedgerResource,
    ) -> dg.Output[dict]:
        # a run naming no version it may train is refused before its snapshot is taken
        version_partition(context, model, governance.services.registry.latest_version(model.name))
        settings = governance.settings
        overrides = config.model_dump(exclude_none=True)
        if model.source.generator is not None:
            with importing_meanwhile("great_expectations"):  # the next step validates with it
                frame, source = generate(model, **overrides)
            snap = snapshots.snapshot_frame(settings, model.name, frame, source)
        elif overrides:
            raise GovernanceError(
                f"{model.name} reads {model.source.file.path}; generator overrides {overrides} "
                "do not apply to a file source"
            )
        else:
            path = model.source.file.path
            frame = read_dataset(model, path)
            snap = snapshots.snapshot_file(settings, model.name, path, frame)
        context.log.info(f"snapshot {snap.md5} ({snap.rows} rows) of {snap.source}")
        links = ledger.record(
            events.DataSnapshotted(
                actor=actor("applications"),
                model=model.name,
                data=snap.sha256,
                dvc_md5=snap.md5,
                rows=snap.rows,
                columns=snap.columns,
                source=str(snap.source),
            ),
        )
        return dg.Output(
            snap.to_dict(),
            data_version=dg.DataVersion(snap.sha256),  # the snapshot's digest, as the ledger entry names it
            metadata={
                **links,
                "dvc_md5": snap.md5,
                "rows": dg.MetadataValue.int(snap.rows),
                "columns": snap.columns,
                "size_bytes": snap.size,
                "source": snap.source,
                "dvc_file": dg.MetadataValue.path(snap.dvc_file),
                "schema": dg.MetadataValue.table_schema(_schema(frame)),
            },
        )

    @dg.asset(
        key=key(model, "validated_applications"),
        group_name=group(model, "data"),
        owners=owners(model),
        code_version=asset_code_version(),
        ins={"applications": dg.AssetIn(key(model, "applications"))},
        kinds={"great_expectations"},
        tags=tags(model, "data"),
        **stored_as("validated_applications.json"),
        check_specs=[
            dg.AssetCheckSpec(
                CONTRACT_CHECK,
                asset=key(model, "validated_applications"),
                blocking=True,
                description="The snapshot meets the configured data contract.",
            )
        ],
        description="The snapshot checked against the data contract in the config (Great Expectations). "
        "Blocks training when it fails.",
    )
    def validated_applications(
        context: dg.AssetExecutionContext, governance: GovernanceResource, ledger: LedgerResource, applications: dict
    ):
        settings = governance.settings
        frame = read_snapshot(settings, model, applications["md5"])
        report = validate(model, frame, applications["md5"])
        path = save_validation(settings, report, applications)
        checked = events.DataValidated if report.passed else events.DataRejected
        links = ledger.record(
            checked(
                actor=actor("validated_applications"),
                model=model.name,
                validation=report.digest,
                data=applications["sha256"],
                dvc_md5=applications["md5"],
                suite=report.suite,
                failed=len(report.failures),
            ),
        )
        summary = {
            "passed": report.passed,
            "suite": report.suite,
            "evaluated": report.evaluated,
            "failures": report.failures,
            "digest": report.digest,
            "path": str(path),
        }
        yield dg.Output(
            {**applications, "validation": summary},
            data_version=dg.DataVersion(report.digest),
            metadata={
                **links,
                "dvc_md5": applications["md5"],
                "passed": report.passed,
                "expectations": report.evaluated,
                "failed": len(report.failures),
                "suite": report.suite,
                "result_digest": report.digest,
                "result": dg.MetadataValue.path(str(path)),
                "failures": md_table(["problem"], [[f] for f in report.failures] or [["none"]]),
            },
        )
        yield dg.AssetCheckResult(
            check_name=CONTRACT_CHECK,
            passed=report.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=_summary(report.failures, path),
            metadata={"failed": len(report.failures), "failures": json.dumps(report.failures[:20])},
        )

    return [applications, validated_applications]


def _summary(failures: list[str], path: Path) -> str:
    """The first five problems, and how many more the validation result lists."""
    more = f"; and {len(failures) - 5} more (all in {path})" if len(failures) > 5 else ""
    return "; ".join(failures[:5]) + more or "all expectations met"


def _schema(frame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in frame.dtypes.items()])
