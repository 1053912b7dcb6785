"""`guard_reports`: the window report, for the record, of decisions the fairness guard contained.

The guard (`govern guard`, governance.monitoring.guard_watch) contains harm
before its window is complete, and once the kill switch is on the rest of the
window is answered in the safe state, so the monitoring sensors pass that
window over (too few scored decisions). This sensor requests the model's
`<model>_remediation` for exactly the decisions the guard judged (ledger
`events.GuardContained`): their full monitoring report, with every live
figure and Evidently's HTML, then remediation, which finds the kill switch on.
One sensor for every governed model: a tick is one ledger read after the
cursor (the sequence number of the last finding it requested a report for).
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from governance import events
from governance.config import GovernedModel
from governance.errors import GovernanceError
from governance.monitoring.windows import LIVE
from governance.release.services import SYSTEM
from governance_assets.common import REQUESTED_BY_TAG
from jobs.monitoring import remediation_job_name, report_run_config
from resources import LedgerResource

GUARD_REPORTS = "guard_reports"


def guard_reports_sensor(
    models: Sequence[GovernedModel], jobs: Sequence, minimum_interval_seconds: int
) -> dg.SensorDefinition:
    governed = {model.name: model for model in models}

    @dg.sensor(
        name=GUARD_REPORTS,
        jobs=list(jobs),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests the model's remediation job (the window report, for the record) for the "
        "decisions of any governed model the fairness guard contained while their window filled.",
    )
    def guard_reports(context: dg.SensorEvaluationContext, ledger: LedgerResource) -> dg.SensorResult:
        after = int(context.cursor or 0)
        try:
            found = ledger.store.events(events.GuardContained, since_seq=after)
        except (GovernanceError, SQLAlchemyError) as exc:
            return dg.SensorResult(
                skip_reason="the ledger cannot be read now (tried again next tick): " + str(exc).splitlines()[0]
            )
        if not found:
            return dg.SensorResult(skip_reason="the guard contained nothing new")
        requests = [_report_request(governed[f.model], f) for f in found if f.model in governed]
        return dg.SensorResult(run_requests=requests, cursor=str(found[-1].seq))

    return guard_reports


def _report_request(model: GovernedModel, finding: events.GuardContained) -> dg.RunRequest:
    return dg.RunRequest(
        job_name=remediation_job_name(model.name),
        run_key=f"{model.name}_guard_reports:{finding.window}",
        run_config=report_run_config(model, *_seqs(finding.window), LIVE, GUARD_REPORTS),
        tags={
            "governance/window": finding.window,
            "governance/stream": LIVE,
            "governance/alerted_by": GUARD_REPORTS,
            REQUESTED_BY_TAG: SYSTEM,
        },
    )


def _seqs(window: str) -> tuple[int, int]:
    first, last = window.split("-")
    return int(first), int(last)
