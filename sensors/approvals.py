"""The approval sensor: a new signed approval launches the release run, so approvers never need the UI.

It only notices approvals the ledger says were granted (`ApprovalGranted`, read after a ledger sequence
cursor), and launches. Whether the approval is valid (authentic, authorised,
for exactly this version's sealed evidence, unexpired, not rejected) is decided by
`approved_release` and again by `production_deployment`, which ledger every refusal.
"""

import dagster as dg

from governance.config import GovernedModel
from governance.events import ApprovalGranted
from governance.release.approvals import deployed_approvals
from governance_assets.common import versions
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
        # The cursor is a ledger sequence number: a grant is ledgered only once its statement was verified and
        # Cedar allowed it, and ledger order is commit order, so no grant can appear behind the cursor.
        seen = int(context.cursor or 0)
        services = governance.services
        granted = services.ledger.events(ApprovalGranted, model=model.name, since_seq=seen)
        if not granted:
            return dg.SensorResult(skip_reason="no new approvals")
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
        return dg.SensorResult(run_requests=requests, cursor=str(granted[-1].seq))

    return approvals
