"""A candidate from the UI without typing a partition name.

`<model>_request_candidate` is a small unpartitioned job: launch it from the Launchpad (or
`dagster job launch -j <model>_request_candidate`), optionally with `version` in its config to pin the
version expected. Its one op checks that such a version would be the next and creates nothing: a typo'd
key fails there, before any partition exists. The `candidate_requests` sensor (sensors.requests) then sees
the successful request run, asks Dagster to add the next version's dynamic partition and launches the
candidate job for it, in the same tick (the daemon applies both; the evaluation itself writes nothing).

Nobody signs such a request (Dagster has no login), so the version's requester is unknown and two
different approvers must approve it (policies/separation_of_duties.cedar). `govern train` signs one.
"""

import dagster as dg

from governance.config import GovernedModel
from governance.errors import GovernanceError
from governance.registry import ModelRegistry, version_key
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
    def check_request(context: dg.OpExecutionContext, config: CandidateRequest, registry: RegistryResource) -> None:
        try:
            key = check_candidate_key(registry.store, model, config.version.strip())
        except CandidateKeyError as refused:  # bad input, said plainly: no stack trace, nothing created
            raise dg.Failure(description=str(refused), allow_retries=False) from None
        context.log.info(f"{key} will be allocated and run by the candidate_requests sensor")

    @dg.job(
        name=request_job_name(model.name),
        tags={"governance/model": model.name},
        description=f"Ask for the next {model.name} candidate without naming a partition: the "
        "candidate_requests sensor allocates the version and launches its candidate run. "
        "Unsigned: two approvers will be needed (`govern train` signs the request).",
    )
    def request_candidate() -> None:
        check_request()

    return request_candidate
