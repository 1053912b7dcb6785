"""Monitoring jobs and the retraining schedule, per governed model.

- `<model>_remediation`: the monitoring report of one alerting window, then the
  remediation the policy chooses (governance.monitoring.remediation). The
  monitoring sensors request it with the window in the run config.
- `<model>_retraining_schedule`: at `retrain_cron` (UTC) plus the model's offset within
  `retrain_spread_minutes` (governance.monitoring.schedule), launch
  `<model>_retraining` (jobs/retraining.py), which authorises and ledgers a
  retraining by the system principal; `retraining_requests` then runs
  `<model>_candidate` for a new version, which stops at the approval request. A tick while a
  candidate is in flight still requests: Dagster's run queue (`governance/queue`, one candidate per
  model) holds the new candidate until the one in flight ends.
"""

from __future__ import annotations

import dagster as dg

from governance import events
from governance.config import GovernedModel
from governance.monitoring.retraining import SCHEDULE
from governance.release.services import SYSTEM
from governance_assets.common import REQUESTED_BY_TAG, key
from jobs import candidate_job_name, queue_tags
from jobs.retraining import SCHEDULED_FOR_TAG, retraining_job, retraining_job_name

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

PRIORITY_TAG = "dagster/priority"  # read by Dagster's queued run coordinator: higher leaves the queue first
REMEDIATION_PRIORITY = 10


def remediation_job_name(model: str) -> str:
    return f"{model}_remediation"


def remediation_job(model: GovernedModel) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        remediation_job_name(model.name),
        selection=dg.AssetSelection.assets(key(model, "monitoring_report"), key(model, "remediation")),
        # Remediation jumps the run queue: a harmful window waits behind no candidate.
        tags={**queue_tags(model.name, "remediation"), PRIORITY_TAG: str(REMEDIATION_PRIORITY)},
        description=f"Report one alerting window of {model.name}'s decisions, then remediate as the policy says "
        "(rollback or kill switch, retraining request).",
    )


def report_run_config(model: GovernedModel, first_seq: int, last_seq: int, stream: str, alerted_by: str) -> dict:
    """The remediation job's run config for one window."""
    op = "__".join(key(model, "monitoring_report").path)
    return {
        "ops": {
            op: {"config": {"first_seq": first_seq, "last_seq": last_seq, "stream": stream, "alerted_by": alerted_by}}
        }
    }


def retraining_tags(request: events.RetrainingRequested) -> dict[str, str]:
    """The tags of the candidate runs launched for a retraining request."""
    return {"governance/trigger": request.trigger, "governance/ledger_entry": str(request.seq)}


def retraining_runs(
    instance: dg.DagsterInstance, model: GovernedModel, request: events.RetrainingRequested
) -> list[dg.DagsterRun]:
    """The candidate runs launched for a retraining request (Dagster's retries of them included), newest first."""
    filtered = dg.RunsFilter(job_name=candidate_job_name(model.name), tags=retraining_tags(request))
    return list(instance.get_runs(filtered))


def retraining_schedule(model: GovernedModel) -> dg.ScheduleDefinition:
    cron = model.retraining_cron

    @dg.schedule(
        name=f"{model.name}_retraining_schedule",
        cron_schedule=cron,
        execution_timezone="UTC",
        job_name=retraining_job_name(model.name),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Scheduled retraining of {model.name} ({cron}, UTC): a new candidate version, "
        "gated and sealed for approval; automation never promotes it.",
    )
    def retraining(context: dg.ScheduleEvaluationContext):
        # Evaluation reads and writes nothing (a UI preview evaluates for real): the run requests and ledgers. A
        # tick while a candidate is in flight is not skipped: its candidate waits in Dagster's run queue.
        scheduled = context.scheduled_execution_time.isoformat()
        return dg.RunRequest(
            run_key=f"scheduled-{scheduled}",
            tags={REQUESTED_BY_TAG: SYSTEM, "governance/trigger": SCHEDULE, SCHEDULED_FOR_TAG: scheduled},
        )

    return retraining


def monitoring_jobs(model: GovernedModel) -> list[dg.UnresolvedAssetJobDefinition | dg.JobDefinition]:
    return [remediation_job(model), retraining_job(model)]
