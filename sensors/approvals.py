"""The approvals sensor: a new signed approval launches the model's release run, so approvers never need the UI.

One sensor for every governed model (sensors.fleet). Each tick it also observes each model's
`<model>/serving_state` and records the observation when the verified serving state changed (a deploy, a
rollback, the kill switch, an incident), so the graph shows production as it is.

It only notices approvals the ledger says were granted (`ApprovalGranted`, read after a ledger sequence
position per model), and launches. Whether the approval is valid (authentic, authorised,
for exactly this version's sealed evidence, unexpired, not rejected) is decided by
`approved_release` and again by `production_deployment`, which ledger every refusal.

A model's position stays before its first grant no release run has answered yet (sensors.attempts): one that
succeeded, or failed on its own steps (a refusal, ledgered). A release run that never started, lost its worker or
was canceled is launched again, up to MAX_ATTEMPTS runs, none while one is in flight; then the release is given up,
ledgered (`ReleaseAbandoned`, by `<model>_abandon`) and shown by `govern status`.

A model the cursor does not name yet starts at the beginning of the ledger, as each model's own
`<model>_approvals` sensor of earlier releases did on its first tick: approvals a deployment used are passed
over, and so is any approval a release run was launched for already (Dagster's own run-key check is scoped to
a sensor's name, so it would not see the runs those sensors launched).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG

from governance.config import GovernedModel
from governance.events import ApprovalGranted
from governance.fleet import CursorError
from governance.release.approvals import deployed_approvals
from governance.release.services import Services
from governance_assets.common import versions
from governance_assets.production.assets import observe_serving
from jobs import release_job_name
from jobs.abandon import abandon_job_name
from resources import GovernanceResource
from sensors.attempts import MAX_ATTEMPTS, attempts, give_up, reached_an_outcome
from sensors.fleet import Visit, fleet_tick

APPROVALS = "approvals"
_EXAMPLE = '{"models": {"credit_scoring": {"ledger_seq": 57, "serving_state": "..."}}}'


def approvals_sensor(models: Sequence[GovernedModel], jobs: Sequence) -> dg.SensorDefinition:
    launched = {name for m in models for name in (release_job_name(m.name), abandon_job_name(m.name))}
    releases = [job for job in jobs if job.name in launched]

    @dg.sensor(
        name=APPROVALS,
        jobs=releases,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches a governed model's release job for each new signed approval of one of its versions "
        f"(again if its run never ran, up to {MAX_ATTEMPTS} runs; then ledgers that it gave up), and observes each "
        "model's serving state when it changed.",
    )
    def approvals(context: dg.SensorEvaluationContext, governance: GovernanceResource) -> dg.SensorResult:
        services = governance.services
        return fleet_tick(
            context,
            models,
            lambda model, position: _visit(context.instance, services, model, Cursor.of(position)),
            _EXAMPLE,
            "no approval to launch",
        )

    return approvals


def _visit(instance: dg.DagsterInstance, services: Services, model: GovernedModel, cursor: Cursor) -> Visit:
    # The position is a ledger sequence number: a grant is ledgered only once its statement was verified and Cedar
    # allowed it, and ledger order is commit order, so no grant can appear behind it. It stays before the first
    # grant not yet settled, so a release run that never ran does not drop its approval.
    serving = observe_serving(services, model)
    changed = serving.version != cursor.serving_state
    granted = services.ledger.events(ApprovalGranted, model=model.name, since_seq=cursor.ledger_seq)
    deployed = deployed_approvals(services, model.name) if granted else set()
    answers = [_answer(instance, services, model, approval, deployed) for approval in granted]
    unsettled = next((i for i, answer in enumerate(answers) if not answer.settled), len(answers))
    return Visit(
        Cursor(granted[unsettled - 1].seq if unsettled else cursor.ledger_seq, serving.version).as_json(),
        requests=tuple(answer.request for answer in answers if answer.request is not None),
        observations=(serving.observation(),) if changed else (),
        notes=(
            *(answer.note for answer in answers if answer.note),
            *([f"serving state now {serving.serving}"] if changed else []),
        ),
        warnings=tuple(answer.warning for answer in answers if answer.warning),
    )


@dataclass(frozen=True)
class _Answer:
    """What a tick does for one grant: whether it is settled, the run to launch, and what to say."""

    settled: bool
    request: dg.RunRequest | None = None
    note: str = ""
    warning: str = ""


def _answer(
    instance: dg.DagsterInstance,
    services: Services,
    model: GovernedModel,
    approval: ApprovalGranted,
    deployed: set[str],
) -> _Answer:
    named = f"approval {approval.statement[:12]}"
    if approval.statement in deployed:
        return _Answer(True, note=f"{named} was already deployed; not launching again")
    if not instance.has_dynamic_partition(versions(model).name, approval.version):
        return _Answer(True, warning=f"{named} names unknown version {approval.version!r}; ignored")
    tried = attempts(instance, _releases(instance, model, approval), reached_an_outcome)
    if tried.answer is not None:
        return _Answer(True, note=f"{named} was already launched by run {tried.answer.run_id}; not launching again")
    if tried.waiting is not None:
        waiting = tried.waiting
        return _Answer(False, note=f"{named}: release run {waiting.run_id} ({waiting.status.value}) has not ended")
    if tried.given_up:
        request, note, settled = give_up(
            instance, services, model, approval.seq, tried, f"{_run_key(approval)}-abandoned"
        )
        said = f"{named}: release {note}"
        return _Answer(True, note=said) if settled else _Answer(False, request, warning=said)
    again = f"{named}: launched again (attempt {tried.attempt}) after {tried.described()}" if tried.runs else ""
    return _Answer(False, _release(model, approval, tried.attempt), warning=again)


def _release(model: GovernedModel, approval: ApprovalGranted, attempt: int) -> dg.RunRequest:
    return dg.RunRequest(
        job_name=release_job_name(model.name),
        partition_key=approval.version,
        run_key=_run_key(approval, attempt),
        tags={"governance/approval": approval.statement[:32], "governance/approver": approval.actor},
    )


def _releases(instance: dg.DagsterInstance, model: GovernedModel, approval: ApprovalGranted) -> list[dg.DagsterRun]:
    """The release runs launched for a grant, by this sensor or a model's own sensor of earlier releases (Dagster's
    retries keep their run key), newest first."""
    keys = [_run_key(approval, attempt) for attempt in range(1, MAX_ATTEMPTS + 1)]
    return list(instance.get_runs(dg.RunsFilter(job_name=release_job_name(model.name), tags={RUN_KEY_TAG: keys})))


def _run_key(approval: ApprovalGranted, attempt: int = 1) -> str:
    first = f"approval-{approval.statement}"
    return first if attempt == 1 else f"{first}-{attempt}"


@dataclass(frozen=True)
class Cursor:
    """One model's position: the last ledger entry looked at, and the data version of the last observed serving
    state."""

    ledger_seq: int = 0
    serving_state: str | None = None

    @classmethod
    def of(cls, position: Any) -> Cursor:
        if position is None:
            return cls()
        if (
            not isinstance(position, dict)
            or not isinstance(position.get("ledger_seq"), int)
            or not isinstance(position.get("serving_state"), str | None)
        ):
            raise CursorError(
                f"cursor position {json.dumps(position)[:200]} is not an approvals position (expected JSON like "
                '{"ledger_seq": 57, "serving_state": "..."}); reset the cursor in the Dagster UI'
            )
        return cls(position["ledger_seq"], position.get("serving_state"))

    def as_json(self) -> dict[str, Any]:
        return {"ledger_seq": self.ledger_seq, "serving_state": self.serving_state}
