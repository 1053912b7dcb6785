"""The approval sensor: a new signed approval launches the release run, so approvers never need the UI.

It only notices approvals the ledger says were granted, and launches. Whether the approval is valid (authentic, authorised,
for exactly this version's sealed evidence, unexpired, not rejected) is decided by
`approved_release` and again by `production_deployment`, which ledger every refusal.
"""

import dagster as dg

from governance.config import GovernedModel
from governance.release.approvals import deployed_approvals
from governance_assets.common import versions
from jobs import release_job_name
from resources import GovernanceResource


def approval_sensor(model: GovernedModel) -> dg.SensorDefinition:
    @dg.sensor(name=f"{model.name}_approvals", job_name=release_job_name(model.name), minimum_interval_seconds=5,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Launches {release_job_name(model.name)} for each new signed approval of a version.")
    def approvals(context: dg.SensorEvaluationContext, governance: GovernanceResource) -> dg.SensorResult:
        seen = int(context.cursor or 0)
        services = governance.services
        recorded = services.statements.find(action="approve", model=model.name)
        fresh = sorted((r for r in recorded if r.seq > seen), key=lambda r: r.seq)
        if not fresh:
            return dg.SensorResult(skip_reason="no new approvals")
        granted = {e.digests.get("statement") for e in services.ledger.entries(model=model.name,
                                                                                action="approval.granted")}
        deployed = deployed_approvals(services, model.name)
        requests = []
        for approval in fresh:
            version = approval.signed.statement.subject["version"]
            if approval.digest not in granted:
                context.log.info(f"approval {approval.digest[:12]} by {approval.signed.statement.principal} was "
                                 "refused when signed (see the ledger); not launching")
                continue
            if approval.digest in deployed:
                context.log.info(f"approval {approval.digest[:12]} was already deployed; not launching again")
                continue
            if not context.instance.has_dynamic_partition(versions(model).name, version):
                context.log.warning(f"approval {approval.digest[:12]} names unknown version {version!r}; ignored")
                continue
            requests.append(dg.RunRequest(partition_key=version, run_key=f"approval-{approval.digest}",
                                          tags={"governance/approval": approval.digest[:32],
                                                "governance/approver": approval.signed.statement.principal}))
        return dg.SensorResult(run_requests=requests, cursor=str(fresh[-1].seq))

    return approvals
