"""Per model, unpartitioned: outcome_labels, monitoring_report (one materialization per alert) and remediation.

`monitoring_report` and `remediation` form `<model>_remediation`, which the
monitoring sensors request for an alerting window; the window's decisions stay
in the decision log, the report (figures and Evidently's HTML) is written
under the model's reports directory and ledgered with the run's id, which is
how the run's remediation finds it (several runs' reports can be in flight).
"""

import dagster as dg

from governance import events
from governance.config import GovernedModel
from governance.console.links import console_base, ledger_entry_url, monitoring_url
from governance.decisions import DecisionLog
from governance.errors import GovernanceError
from governance.monitoring.labels import import_labels, labelled_count
from governance.monitoring.monitor import monitor_for
from governance.monitoring.recorded import run_report
from governance.monitoring.remediation import remediate
from governance.monitoring.report import write_report
from governance.monitoring.windows import LIVE, STREAMS, read_window
from governance.objectstore import publish
from governance.registry import version_key
from governance_assets.common import actor, group, key, md_table, owners, tags
from governance_assets.production.assets import observe_serving
from resources import GovernanceResource, LedgerResource

POLICY_CHECK = "within_policy"


class AlertedWindow(dg.Config):
    """The window an alert names (decision-log sequence numbers) and the stream it was judged in."""

    first_seq: int
    last_seq: int
    stream: str = LIVE
    alerted_by: str = ""


class LabelsFile(dg.Config):
    """A labels file to import (CSV or Parquet: decision_id, label); empty: only report label coverage."""

    path: str = ""


def monitoring_assets(model: GovernedModel) -> list[dg.AssetsDefinition]:
    common = dict(group_name=group(model, "monitoring"), owners=owners(model), tags=tags(model, "monitoring"))
    report_key = key(model, "monitoring_report")

    @dg.asset(
        key=key(model, "outcome_labels"),
        kinds={"sql"},
        **common,
        description="Real outcomes joined to logged decisions (`govern labels import FILE`, or a path in the "
        "launchpad); performance and equal opportunity are judged on labelled windows.",
    )
    def outcome_labels(
        config: LabelsFile, governance: GovernanceResource, ledger: LedgerResource
    ) -> dg.MaterializeResult:
        settings, metadata = governance.settings, {}
        log = DecisionLog.for_settings(settings)
        if config.path:
            done = import_labels(
                log,
                ledger.store,
                governance.config,
                config.path,
                actor="system:outcome_labels",
                model=model.name,
            )
            metadata.update(
                file=dg.MetadataValue.path(done.path),
                file_sha256=done.sha256,
                newly_labelled=dg.MetadataValue.int(done.labelled.get(model.name, 0)),
                unchanged=dg.MetadataValue.int(done.unchanged),
            )
        total, labelled = log.count(model.name), labelled_count(log, model.name)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "decisions": dg.MetadataValue.int(total),
                "labelled": dg.MetadataValue.int(labelled),
                "coverage": dg.MetadataValue.float(labelled / total if total else 0.0),
            }
        )

    @dg.asset(
        key=report_key,
        kinds={"evidently"},
        **common,
        deps=[key(model, "production_deployment"), key(model, "outcome_labels")],
        check_specs=[
            dg.AssetCheckSpec(
                POLICY_CHECK, asset=report_key, description="The window is within policies/monitoring.cedar."
            )
        ],
        description="The monitoring report of a window a sensor alerted on: every figure of its stream, "
        "what the monitoring policy calls for and why, and Evidently's data drift report (HTML). "
        "Each judged window is also an observation of this asset.",
    )
    def monitoring_report(
        context: dg.AssetExecutionContext, config: AlertedWindow, governance: GovernanceResource, ledger: LedgerResource
    ) -> dg.MaterializeResult:
        if config.stream not in STREAMS:
            raise GovernanceError(f"stream {config.stream!r} is not one of {', '.join(STREAMS)}")
        monitor = monitor_for(governance.settings)
        window = read_window(monitor.log, model.name, config.first_seq, config.last_seq)
        directory = (
            governance.settings.model_dir(model.name)
            / "monitoring"
            / f"{config.stream}-{window.key}-{context.run_id[:8]}"
        )
        report = write_report(
            monitor,
            model,
            window,
            config.stream,
            directory,
            {"alerted_by": config.alerted_by, "run_id": context.run_id},
        )
        publish(governance.settings, directory)
        judgement = report.judgement
        judged = events.MonitoringAlert if judgement.alert else events.MonitoringReported
        entry = ledger.store.append(
            judged(
                actor=actor("monitoring_report"),
                model=model.name,
                version=version_key(model.name, judgement.version),
                report=report.sha256,
                evidently_html=report.html_sha256,
                window=judgement.window,
                stream=judgement.stream,
                run_id=context.run_id,
                path=governance.settings.relative(report.path),
                alerted_by=config.alerted_by,
                summary=judgement.summary(),
                policy_digest=judgement.policy_digest,
            ),
        )
        console = console_base(governance.settings)
        figures = {name: dg.MetadataValue.float(float(value)) for name, value in judgement.attributes.items()}
        check = dg.AssetCheckResult(
            check_name=POLICY_CHECK,
            passed=not judgement.alert,
            severity=dg.AssetCheckSeverity.ERROR if judgement.contain.allowed else dg.AssetCheckSeverity.WARN,
            description=judgement.summary()[:2000],
        )
        return dg.MaterializeResult(
            check_results=[check],
            data_version=dg.DataVersion(report.sha256),
            metadata={
                "window": judgement.window,
                "stream": judgement.stream,
                "version": dg.MetadataValue.int(judgement.version),
                "decisions": dg.MetadataValue.int(judgement.decisions),
                "alerted_by": config.alerted_by,
                **figures,
                "measurements": md_table(
                    ["concern", "summary"], [[m.concern, m.summary] for m in judgement.measurements]
                ),
                "policy": md_table(["calls for", "rule", "why"], _rule_rows(judgement)),
                "report": dg.MetadataValue.path(str(report.path)),
                **(
                    {"evidently_report": dg.MetadataValue.url(monitoring_url(model.name, entry.seq, console))}
                    if report.html_path
                    else {}
                ),
                **ledger.links(entry.entry_hash, entry.seq),
            },
        )

    @dg.asset(
        key=key(model, "remediation"),
        kinds={"cedar"},
        **common,
        deps=[report_key],
        description="What the monitoring policy chose for the reported window, done: rollback to the previous "
        "approved version or kill switch (signed by the system principal), retraining request.",
    )
    def remediation(context: dg.AssetExecutionContext, governance: GovernanceResource) -> dg.MaterializeResult:
        monitor = monitor_for(governance.settings)
        recorded = run_report(
            governance.services.ledger, governance.settings, model.name, context.run_id
        )  # this run's report
        done = remediate(monitor, model, recorded, holder=context.run_id)
        if not done.contained:
            raise GovernanceError(
                f"{model.name}: harm was found and NOT contained: {done.summary()} (ledger entry {done.ledger_seq})"
            )
        serving = observe_serving(governance.services, model)
        context.log_event(serving.observation())
        context.log.info(
            f"{model.name} remediated ({', '.join(done.actions) or 'no action'}); serving: {serving.serving}"
        )
        return dg.MaterializeResult(
            metadata={
                "actions": ", ".join(done.actions) or "none",
                "serving_when_remediated": serving.serving,  # of its time: serving_state shows it now
                "window": done.window,
                "judged_version": dg.MetadataValue.int(done.version),
                "notes": dg.MetadataValue.md("\n".join(f"- {note}" for note in done.notes) or "-"),
                "rollback_target": (
                    f"v{done.rollback_target['version']}: "
                    f"{'passes' if done.rollback_target['passes'] else 'does not pass'}"
                    if done.rollback_target
                    else "-"
                ),
                "ledger_seq": dg.MetadataValue.text(str(done.ledger_seq)),
                "ledger_link": dg.MetadataValue.url(
                    ledger_entry_url(done.ledger_seq, console_base(governance.settings))
                ),
            }
        )

    return [outcome_labels, monitoring_report, remediation]


def _rule_rows(judgement) -> list[list]:
    rows = [
        [verdict.action, finding.rule, "; ".join(finding.conditions) or finding.message]
        for verdict in (judgement.contain, judgement.retrain)
        if verdict.allowed
        for finding in verdict.findings
    ]
    return rows or [["nothing", "-", "within policy"]]
