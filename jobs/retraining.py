"""`<model>_retraining`: the run the retraining schedule launches, which asks for a new candidate at run time.

Evaluating a schedule must write nothing (Dagster's "Preview tick result" runs the evaluation for real), so the
schedule only launches this run; the run signs, authorises and ledgers the request
(`governance.monitoring.retraining.request_retraining`), and the `retraining_requests` sensor launches the
candidate for it as it does for monitoring's requests. A refusal by the policy is ledgered and is the run's
outcome, not a failure.
"""

import dagster as dg

from governance.config import GovernedModel
from governance.monitoring.retraining import SCHEDULE, RetrainingRefused, request_retraining
from resources import GovernanceResource

SCHEDULED_FOR_TAG = "governance/scheduled_for"


def retraining_job_name(model: str) -> str:
    return f"{model}_retraining"


def retraining_job(model: GovernedModel) -> dg.JobDefinition:
    cron = model.monitoring.retrain_cron

    @dg.op(name=f"{model.name}__request_retraining", tags={"governance/model": model.name})
    def request(context: dg.OpExecutionContext, governance: GovernanceResource) -> None:
        scheduled = context.run.tags.get(SCHEDULED_FOR_TAG, "")
        try:
            entry = request_retraining(
                governance.services,
                model.name,
                SCHEDULE,
                f"scheduled retraining ({cron})",
                {"scheduled_for": scheduled},
            )
        except RetrainingRefused as refused:
            context.log.warning(f"{refused}; no candidate is started")
            return
        context.log.info(
            f"retraining of {model.name} requested (ledger entry {entry.seq}); "
            "the retraining_requests sensor launches the candidate"
        )

    @dg.job(
        name=retraining_job_name(model.name),
        tags={"governance/model": model.name},
        description=f"Sign, authorise and ledger a scheduled retraining of {model.name}; the retraining sensor "
        "then starts the candidate, which stops at the approval request.",
    )
    def retraining():
        request()

    return retraining
