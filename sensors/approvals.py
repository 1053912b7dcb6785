"""The approvals sensor: a new signed approval launches the model's release run, so approvers never need the UI.

One sensor for every governed model (sensors.fleet). Each tick it also observes each model's
`<model>/serving_state` and records the observation when the verified serving state changed (a deploy, a
rollback, the kill switch, an incident), so the graph shows production as it is.

It only notices approvals the ledger says were granted (`ApprovalGranted`, read after a ledger sequence
position per model), and launches. Whether the approval is valid (authentic, authorised,
for exactly this version's sealed evidence, unexpired, not rejected) is decided by
`approved_release` and again by `production_deployment`, which ledger every refusal.

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
from resources import GovernanceResource
from sensors.fleet import Visit, fleet_tick

APPROVALS = "approvals"
_EXAMPLE = '{"models": {"credit_scoring": {"ledger_seq": 57, "serving_state": "..."}}}'


def approvals_sensor(models: Sequence[GovernedModel], jobs: Sequence) -> dg.SensorDefinition:
    releases = [job for job in jobs if job.name in {release_job_name(m.name) for m in models}]

    @dg.sensor(
        name=APPROVALS,
        jobs=releases,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches a governed model's release job for each new signed approval of one of its versions, "
        "and observes each model's serving state when it changed.",
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
    # allowed it, and ledger order is commit order, so no grant can appear behind it.
    serving = observe_serving(services, model)
    changed = serving.version != cursor.serving_state
    granted = services.ledger.events(ApprovalGranted, model=model.name, since_seq=cursor.ledger_seq)
    requests, notes, warnings = _launches(instance, services, model, granted) if granted else ([], [], [])
    return Visit(
        Cursor(granted[-1].seq if granted else cursor.ledger_seq, serving.version).as_json(),
        requests=tuple(requests),
        observations=(serving.observation(),) if changed else (),
        notes=(*notes, *([f"serving state now {serving.serving}"] if changed else [])),
        warnings=tuple(warnings),
    )


def _launches(
    instance: dg.DagsterInstance, services: Services, model: GovernedModel, granted: list[ApprovalGranted]
) -> tuple[list[dg.RunRequest], list[str], list[str]]:
    """The release runs to launch for these grants, and why any other is passed over (notes, warnings)."""
    deployed = deployed_approvals(services, model.name)
    requests, notes, warnings = [], [], []
    for approval in granted:
        named = f"approval {approval.statement[:12]}"
        if approval.statement in deployed:
            notes.append(f"{named} was already deployed; not launching again")
        elif not instance.has_dynamic_partition(versions(model).name, approval.version):
            warnings.append(f"{named} names unknown version {approval.version!r}; ignored")
        elif (launched := _launched(instance, model, approval)) is not None:
            notes.append(f"{named} was already launched by run {launched.run_id}; not launching again")
        else:
            requests.append(_release(model, approval))
    return requests, notes, warnings


def _release(model: GovernedModel, approval: ApprovalGranted) -> dg.RunRequest:
    return dg.RunRequest(
        job_name=release_job_name(model.name),
        partition_key=approval.version,
        run_key=_run_key(approval),
        tags={"governance/approval": approval.statement[:32], "governance/approver": approval.actor},
    )


def _launched(instance: dg.DagsterInstance, model: GovernedModel, approval: ApprovalGranted) -> dg.DagsterRun | None:
    runs = instance.get_runs(
        dg.RunsFilter(job_name=release_job_name(model.name), tags={RUN_KEY_TAG: _run_key(approval)}),
        limit=1,
    )
    return runs[0] if runs else None


def _run_key(approval: ApprovalGranted) -> str:
    return f"approval-{approval.statement}"


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
