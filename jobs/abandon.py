"""`<model>_abandon`: ledgers that automation gave up on one of the model's requests (`governance.abandoned`).

The retraining and approvals sensors launch it when every run launched for a request ended without answering it
(sensors.attempts): evaluating a sensor must write nothing (Dagster's "Test sensor" evaluates it for real), so this
run ledgers, and the sensor holds the request until the ledger has it.
"""

import dagster as dg

from governance.abandoned import abandon
from governance.config import GovernedModel
from governance_assets.common import actor
from resources import GovernanceResource


class Abandoned(dg.Config):
    request: int  # the ledger entry of the request given up on
    runs: list[str]  # the Dagster runs launched for it
    reason: str


def abandon_job_name(model: str) -> str:
    return f"{model}_abandon"


def _op_name(model: GovernedModel) -> str:
    return f"{model.name}__abandon"


def abandon_run_config(model: GovernedModel, request: int, runs: list[str], reason: str) -> dict:
    return {"ops": {_op_name(model): {"config": {"request": request, "runs": runs, "reason": reason}}}}


def abandon_job(model: GovernedModel) -> dg.JobDefinition:
    @dg.op(name=_op_name(model), tags={"governance/model": model.name})
    def ledger_abandoned(context: dg.OpExecutionContext, config: Abandoned, governance: GovernanceResource) -> None:
        given_up = abandon(
            governance.services, model.name, config.request, tuple(config.runs), config.reason, actor("abandon")
        )
        context.log.warning(
            f"{model.name}: automation gave up on ledger entry {config.request} ({type(given_up).__name__}, ledger "
            f"entry {given_up.seq}): {given_up.reason}"
        )

    @dg.job(
        name=abandon_job_name(model.name),
        tags={"governance/model": model.name},
        description=f"Ledger that automation gave up on a retraining request or a release of {model.name} whose "
        "runs never answered it (launched by the retraining_requests and approvals sensors).",
    )
    def abandon_request() -> None:
        ledger_abandoned()

    return abandon_request
