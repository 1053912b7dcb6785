"""The approval sensor: a new signed approval launches the release run, so approvers never need the UI.

Each tick it also observes `<model>/serving_state` and records the observation when the verified serving
state changed (a deploy, a rollback, the kill switch, an incident), so the graph shows production as it is.

It only notices approvals the ledger says were granted (`ApprovalGranted`, read after a ledger sequence
cursor), and launches. Whether the approval is valid (authentic, authorised,
for exactly this version's sealed evidence, unexpired, not rejected) is decided by
`approved_release` and again by `production_deployment`, which ledger every refusal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import dagster as dg

from governance.config import GovernedModel
from governance.events import ApprovalGranted
from governance.release.approvals import deployed_approvals
from governance_assets.common import versions
from governance_assets.production.assets import observe_serving
from jobs import release_job_name
from resources import GovernanceResource


def approval_sensor(model: GovernedModel) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{model.name}_approvals",
        job_name=release_job_name(model.name),
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Launches {release_job_name(model.name)} for each new signed approval of a version.",
    )
    def approvals(context: dg.SensorEvaluationContext, governance: GovernanceResource) -> dg.SensorResult:
        # The cursor holds a ledger sequence number: a grant is ledgered only once its statement was verified and
        # Cedar allowed it, and ledger order is commit order, so no grant can appear behind the cursor.
        cursor = Cursor.parse(context.cursor)
        services = governance.services
        serving = observe_serving(services, model)
        observed = [serving.observation()] if serving.version != cursor.serving_state else []
        granted = services.ledger.events(ApprovalGranted, model=model.name, since_seq=cursor.ledger_seq)
        if not granted:
            return dg.SensorResult(
                skip_reason="no new approvals" + (f"; serving state now {serving.serving}" if observed else ""),
                asset_events=observed,
                cursor=Cursor(cursor.ledger_seq, serving.version).dumps(),
            )
        deployed = deployed_approvals(services, model.name)
        requests = []
        for approval in granted:
            if approval.statement in deployed:
                context.log.info(f"approval {approval.statement[:12]} was already deployed; not launching again")
                continue
            if not context.instance.has_dynamic_partition(versions(model).name, approval.version):
                context.log.warning(
                    f"approval {approval.statement[:12]} names unknown version {approval.version!r}; ignored"
                )
                continue
            requests.append(
                dg.RunRequest(
                    partition_key=approval.version,
                    run_key=f"approval-{approval.statement}",
                    tags={"governance/approval": approval.statement[:32], "governance/approver": approval.actor},
                )
            )
        return dg.SensorResult(
            run_requests=requests,
            asset_events=observed,
            cursor=Cursor(granted[-1].seq, serving.version).dumps(),
        )

    return approvals


@dataclass(frozen=True)
class Cursor:
    """The last ledger entry looked at, and the data version of the last observed serving state."""

    ledger_seq: int = 0
    serving_state: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        if text.isdigit():  # the cursor of earlier releases: a bare ledger sequence number
            return cls(int(text))
        found = json.loads(text)
        return cls(int(found["ledger_seq"]), found.get("serving_state"))

    def dumps(self) -> str:
        return json.dumps({"ledger_seq": self.ledger_seq, "serving_state": self.serving_state}, sort_keys=True)
