"""A candidate from the UI without typing a partition name.

`<model>_request_candidate` is a small unpartitioned job: launch it from the Launchpad (or
`dagster job launch -j <model>_request_candidate`), optionally with `version` in its config to pin the
version expected. Its one op checks that such a version would be the next and creates nothing: a typo'd
key fails there, before any partition exists. The `<model>_candidate_requests` sensor then sees the
successful request run, asks Dagster to add the next version's dynamic partition and launches the
candidate job for it, in the same tick (the daemon applies both; the evaluation itself writes nothing).

Nobody signs such a request (Dagster has no login), so the version's requester is unknown and two
different approvers must approve it (policies/separation_of_duties.cedar). `govern train` signs one.
"""

from datetime import UTC, datetime

import dagster as dg

from governance.config import GovernedModel
from governance.errors import GovernanceError
from governance.registry import ModelRegistry, version_key
from governance_assets.common import REQUESTED_BY_TAG, versions
from resources import RegistryResource

UNSIGNED = "unknown (launched without a signed request)"


class CandidateKeyError(GovernanceError):
    """A partition key that is not the model's next version; nothing was created."""


def candidate_key(registry: ModelRegistry, model: GovernedModel) -> str:
    """The partition key the next training run must use."""
    return version_key(model.name, registry.latest_version(model.name) + 1)


def check_candidate_key(registry: ModelRegistry, model: GovernedModel, key: str) -> str:
    """`key` if it names the model's next version (or is empty: the next one); else CandidateKeyError."""
    expected = candidate_key(registry, model)
    if key and key != expected:
        raise CandidateKeyError(
            f"{key!r} is not the next {model.name} version: the next candidate is {expected!r} "
            "(versions are allocated in order; leave `version` empty to get the next one)"
        )
    return expected


def request_job_name(model: str) -> str:
    return f"{model}_request_candidate"


class CandidateRequest(dg.Config):
    version: str = ""  # e.g. credit_scoring-v4; empty: the next version, whichever it is


def request_job(model: GovernedModel) -> dg.JobDefinition:
    @dg.op(name=f"{model.name}__check_candidate_request")
    def check_request(context: dg.OpExecutionContext, config: CandidateRequest, registry: RegistryResource) -> str:
        try:
            key = check_candidate_key(registry.store, model, config.version.strip())
        except CandidateKeyError as refused:  # bad input, said plainly: no stack trace, nothing created
            raise dg.Failure(description=str(refused), allow_retries=False) from None
        context.log.info(f"{key} will be allocated and run by the {model.name}_candidate_requests sensor")
        return key

    @dg.job(
        name=request_job_name(model.name),
        tags={"governance/model": model.name},
        description=f"Ask for the next {model.name} candidate without naming a partition: the "
        f"{model.name}_candidate_requests sensor allocates the version and launches its candidate run. "
        "Unsigned: two approvers will be needed (`govern train` signs the request).",
    )
    def request_candidate() -> None:
        check_request()

    return request_candidate


def request_sensor(model: GovernedModel, candidate_job: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{model.name}_candidate_requests",
        job_name=candidate_job,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"For each successful {request_job_name(model.name)} run, adds the next version's "
        f"partition and launches {candidate_job} for it.",
    )
    def candidate_requests(context: dg.SensorEvaluationContext, registry: RegistryResource) -> dg.SensorResult:
        since = float(context.cursor or 0)
        done = context.instance.get_run_records(
            dg.RunsFilter(
                job_name=request_job_name(model.name),
                statuses=[dg.DagsterRunStatus.SUCCESS],
                updated_after=datetime.fromtimestamp(since, UTC),
            ),
            ascending=True,
        )
        done = [record for record in done if record.update_timestamp.timestamp() > since]
        if not done:
            return dg.SensorResult(skip_reason="no new candidate requests")
        cursor = str(done[0].update_timestamp.timestamp())  # one candidate per request, oldest first
        key = candidate_key(registry.store, model)
        if _in_flight(context.instance, key):
            context.log.info(f"{key} already has a candidate run; {len(done)} request(s) wait for it to end")
            return dg.SensorResult(skip_reason=f"{key} is already running")
        partitions = versions(model).name
        added = [] if context.instance.has_dynamic_partition(partitions, key) else [key]
        run = done[0].dagster_run
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    partition_key=key,
                    run_key=f"request-{run.run_id}",
                    tags={REQUESTED_BY_TAG: UNSIGNED, "governance/request_run": run.run_id},
                )
            ],
            dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest(partitions, added)] if added else [],
            cursor=cursor,
        )

    return candidate_requests


def _in_flight(instance: dg.DagsterInstance, key: str) -> bool:
    """A run of this partition that has not ended (or ended well): another candidate would only fail."""
    ended_badly = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": key}), limit=20)
    return any(run.status not in ended_badly for run in runs)
