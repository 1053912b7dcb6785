"""`<model>_guard_reports`: the window report, for the record, of decisions the fairness guard contained.

The guard (`govern guard`, governance.monitoring.guard_watch) contains harm
before its window is complete, and once the kill switch is on the rest of the
window is answered in the safe state, so the monitoring sensors pass that
window over (too few scored decisions). This sensor requests
`<model>_remediation` for exactly the decisions the guard judged (ledger
`monitoring.guard_contained`): their full monitoring report, with every live
figure and Evidently's HTML, then remediation, which finds the kill switch on.
"""

from __future__ import annotations

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from governance import events
from governance.config import GovernedModel
from governance.errors import GovernanceError
from governance.monitoring.windows import LIVE
from governance.release.services import SYSTEM
from governance_assets.common import REQUESTED_BY_TAG
from jobs.monitoring import remediation_job_name, report_run_config
from resources import GovernanceResource


def guard_reports_sensor(model: GovernedModel, minimum_interval_seconds: int) -> dg.SensorDefinition:
    name = f"{model.name}_guard_reports"

    @dg.sensor(
        name=name,
        job_name=remediation_job_name(model.name),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests {remediation_job_name(model.name)} (the window report, for the record) for the "
        f"decisions of {model.name} the fairness guard contained while their window filled.",
    )
    def guard_reports(context: dg.SensorEvaluationContext, governance: GovernanceResource) -> dg.SensorResult:
        after = int(context.cursor or 0)
        try:
            found = governance.services.ledger.events(events.GuardContained, model=model.name, since_seq=after)
        except (GovernanceError, SQLAlchemyError) as exc:
            return dg.SensorResult(
                skip_reason="the ledger cannot be read now (tried again next tick): " + str(exc).splitlines()[0]
            )
        if not found:
            return dg.SensorResult(skip_reason="the guard contained nothing new")
        requests = [
            dg.RunRequest(
                run_key=f"{name}:{finding.window}",
                run_config=report_run_config(model, *_seqs(finding.window), LIVE, name),
                tags={
                    "governance/window": finding.window,
                    "governance/stream": LIVE,
                    "governance/alerted_by": name,
                    REQUESTED_BY_TAG: SYSTEM,
                },
            )
            for finding in found
        ]
        return dg.SensorResult(run_requests=requests, cursor=str(found[-1].seq))

    return guard_reports


def _seqs(window: str) -> tuple[int, int]:
    first, last = window.split("-")
    return int(first), int(last)
