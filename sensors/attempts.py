"""The runs answering one request a sensor launches runs for: a retraining request, a granted approval, a successful
candidate request run.

A request stays open until a run answers it. Dagster's run monitoring fails a run stuck before it starts (or whose
worker died) and its run retries launch such a run again; when they do not (their retries spent, a run canceled),
the sensor launches the request again under a run key of its own, up to MAX_ATTEMPTS runs for the request (Dagster's
retries included), never while one is in flight. Then it gives up, and says so: the retraining and approvals
sensors ledger it (`<model>_abandon`), once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.events import RunFailureReason
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, RUN_FAILURE_REASON_TAG, RUN_KEY_TAG, WILL_RETRY_TAG
from dagster._time import get_current_timestamp

from governance.abandoned import abandoned
from governance.config import GovernedModel
from governance.release.services import SYSTEM, Services
from governance_assets.common import REQUESTED_BY_TAG
from jobs.abandon import abandon_job_name, abandon_run_config
from jobs.monitoring import IN_FLIGHT

MAX_ATTEMPTS = 3  # runs for one request, Dagster's retries included
RETRY_GRACE_SECONDS = 300  # how long a failed run Dagster will retry holds its request before the sensor relaunches


def succeeded(run: dg.DagsterRun) -> bool:
    return run.status == dg.DagsterRunStatus.SUCCESS


def reached_an_outcome(run: dg.DagsterRun) -> bool:
    """The run succeeded, or failed on one of its own steps: an outcome (a refused approval, rejected data), which
    Dagster's run retries do not retry either (`retry_on_asset_or_op_failure: false`)."""
    return succeeded(run) or run.tags.get(RUN_FAILURE_REASON_TAG) == RunFailureReason.STEP_FAILURE.value


@dataclass(frozen=True)
class Attempts:
    """The runs launched for a request (newest first), the one that answered it and the one still under way."""

    runs: tuple[dg.DagsterRun, ...]
    answer: dg.DagsterRun | None
    waiting: dg.DagsterRun | None

    @property
    def given_up(self) -> bool:
        return self.answer is None and self.waiting is None and len(self.runs) >= MAX_ATTEMPTS

    @property
    def attempt(self) -> int:
        """The number of the next run."""
        return len(self.runs) + 1

    def described(self) -> str:
        return ", ".join(ended(run) for run in self.runs)


def attempts(
    instance: dg.DagsterInstance, runs: Sequence[dg.DagsterRun], answers: Callable[[dg.DagsterRun], bool] = succeeded
) -> Attempts:
    return Attempts(
        tuple(runs),
        next((run for run in runs if answers(run)), None),
        next((run for run in runs if run.status in IN_FLIGHT or _retried_soon(instance, run)), None),
    )


def ended(run: dg.DagsterRun) -> str:
    """How a run ended, Dagster's reason for a failure included (START_TIMEOUT: it never started)."""
    reason = run.tags.get(RUN_FAILURE_REASON_TAG)
    return f"run {run.run_id} {run.status.value}" + (f" ({reason})" if reason else "")


def give_up(
    instance: dg.DagsterInstance,
    services: Services,
    model: GovernedModel,
    request: int,
    tried: Attempts,
    run_key: str,
) -> tuple[dg.RunRequest | None, str, bool]:
    """For a request given up on (ledger entry `request`): the `<model>_abandon` run that ledgers it (under
    `run_key`, launched once), what happens, and whether the request is settled (the ledger has it)."""
    after = f"given up after {len(tried.runs)} runs that did not answer it ({tried.described()})"
    ledgered = abandoned(services, model.name, request)
    if ledgered is not None:
        return None, f"{after}; ledger entry {ledgered.seq}", True
    earlier = instance.get_runs(
        dg.RunsFilter(job_name=abandon_job_name(model.name), tags={RUN_KEY_TAG: run_key}), limit=1
    )
    if earlier:
        run = earlier[0]
        if run.status in IN_FLIGHT:
            return None, f"{after}; run {run.run_id} ({run.status.value}) ledgers that", False
        return None, f"{after}; run {run.run_id} ledgering that ended {run.status.value}: re-execute it", False
    reason = f"the {len(tried.runs)} runs launched for it did not answer it: {tried.described()}"
    ledger_it = dg.RunRequest(
        job_name=abandon_job_name(model.name),
        run_key=run_key,
        run_config=abandon_run_config(model, request, [run.run_id for run in tried.runs], reason),
        tags={REQUESTED_BY_TAG: SYSTEM},
    )
    return ledger_it, f"{after}; launches the run that ledgers that", False


def partition_in_flight(instance: dg.DagsterInstance, key: str) -> bool:
    """A run of this version partition that has not ended (or ended well): another candidate would only fail."""
    ended_badly = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": key}), limit=20)
    return any(run.status not in ended_badly for run in runs)


def _retried_soon(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """A failed run Dagster said it will retry, recently enough that its retry has yet to appear."""
    if run.status != dg.DagsterRunStatus.FAILURE or run.tags.get(WILL_RETRY_TAG) != "true":
        return False
    if instance.get_runs(dg.RunsFilter(tags={PARENT_RUN_ID_TAG: run.run_id}), limit=1):
        return False
    record = instance.get_run_record_by_id(run.run_id)
    ended_at = record.end_time if record is not None else None
    return ended_at is not None and get_current_timestamp() - ended_at < RETRY_GRACE_SECONDS
