"""Per version: release_gate (Cedar), approval_request (sealed evidence), approved_release and
production_deployment (both re-verify the signed approval themselves)."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from governance import events
from governance.config import GovernedModel
from governance.console.links import console_base, evidence_pack_url, version_url
from governance.data.validation import load_validation, validation_path
from governance.digests import digest_of
from governance.errors import GovernanceError
from governance.objectstore import publish
from governance.policy.authz import VersionSubject
from governance.policy.gate import evaluate_gate
from governance.policy.records import record_gate_decision
from governance.policy.waivers import honoured_waivers
from governance.registry import version_key
from governance.release.approvals import request_approval, valid_approval
from governance.release.champion import champion_comparison
from governance.release.deployment import deploy
from governance.release.evidence_pack import EXPLAINABILITY_FILE, GATE_FILE, seal
from governance.release.gate_evidence import gate_evidence
from governance.release.requests import requesters
from governance.release.services import Services
from governance.timestamps import parse_utc, utc_now
from governance_assets.common import actor, asset_code_version, group, key, md_table, owners, tags, versions
from governance_assets.evaluation.assets import publish_card
from governance_assets.production.assets import observe_serving
from resources import GovernanceResource, LedgerResource
from resources.reports import stored_as, stored_path

GATE_CHECK = "policy_decision"


def release_assets(model: GovernedModel) -> list[dg.AssetsDefinition]:
    common = dict(
        code_version=asset_code_version(),
        group_name=group(model, "release"),
        owners=owners(model),
        partitions_def=versions(model),
        tags=tags(model, "release"),
    )

    @dg.asset(
        key=key(model, "release_gate"),
        kinds={"cedar"},
        **common,
        **stored_as(GATE_FILE),
        ins={
            "trained": dg.AssetIn(key(model, "trained_model")),
            "performance": dg.AssetIn(key(model, "performance_report")),
            "fairness": dg.AssetIn(key(model, "fairness_report")),
            "explainability": dg.AssetIn(key(model, "explainability_report")),
            "card": dg.AssetIn(key(model, "model_card")),
        },
        check_specs=[
            dg.AssetCheckSpec(
                GATE_CHECK,
                asset=key(model, "release_gate"),
                partitions_def=versions(model),
                description="The Cedar release policies allow promotion of this version. A denial is the "
                "gate's outcome for the version, not a failed run: approval_request then seals nothing.",
            )
        ],
        description="The policy decision (Cedar) on this version's evidence, with every rule that denied, "
        "the measured value and the threshold; honoured waivers applied.",
    )
    def release_gate(
        context: dg.AssetExecutionContext,
        governance: GovernanceResource,
        ledger: LedgerResource,
        trained: dict,
        performance: dict,
        fairness: dict,
        explainability: dict,
        card: dict,
    ):
        services, version = governance.services, context.partition_key
        reports = {"performance": performance, "fairness": fairness, "explainability": explainability}
        asked = requesters(services, model.name, version)
        champion = champion_comparison(services, model, trained["version"], trained["data_md5"])
        evidence = gate_evidence(
            model,
            version,
            validation=load_validation(governance.settings, model.name, trained["data_md5"]),
            card=card,
            champion_auc=champion.auc,
            champion_basis=champion.basis,
            requested_by=list(asked.verified),
            **reports,
        )
        subject = VersionSubject(
            model.name, version, model.risk_tier, evidence.trained_by, asked.verified, named_requesters=asked.named
        )
        bundle, roster = services.policies, services.roster
        waivers = honoured_waivers(bundle=bundle, roster=roster, store=services.statements, subject=subject)
        decision = evaluate_gate(bundle, evidence, waivers)
        relied_on = [denial.waiver.to_dict() for denial in decision.denials if denial.waiver]
        if sorted(w["statement_digest"] for w in relied_on) != card.get("waivers", []):
            # The card lists exactly the waivers this decision honoured (granted after the card was written,
            # or no longer relied upon): it is published again, before anything seals it.
            publish_card(governance, ledger, model, trained, performance, fairness, explainability, relied_on)
        entry = record_gate_decision(services.ledger, decision)
        reasons = decision.reasons()
        outcome = "allowed" if decision.allowed else "denied: " + ", ".join(d.rule for d in decision.denials)
        context.log.info(f"{version}: release gate {outcome} (policy {decision.policy_digest[:12]})")
        described = "; ".join(reasons) or "every release rule allows promotion"
        if champion.basis and not any(d.rule == "performance.champion_auc_drop" for d in decision.denials):
            described += f" (against the champion: {champion.basis})"  # a denial of that rule quotes it already
        document = decision.to_dict()  # gate_decision.json, as the evidence pack seals it
        yield dg.Output(
            document,
            data_version=dg.DataVersion(digest_of(document)),
            metadata={
                "outcome": outcome,
                "allowed": decision.allowed,
                "policy_digest": decision.policy_digest,
                "rules_evaluated": len(decision.rules_evaluated),
                "champion_comparison": champion.basis or "no champion",
                "denials": md_table(["rule", "measured", "threshold", "waived by", "until"], _denial_rows(decision))
                if decision.denials
                else dg.MetadataValue.md("No rule denied."),
                **ledger.links(entry.entry_hash, entry.seq),
            },
        )
        yield dg.AssetCheckResult(
            check_name=GATE_CHECK,
            passed=decision.allowed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=described,
            metadata={
                "version": version,
                "denied_rules": ", ".join(d.rule for d in decision.denials) or "none",
                "policy_digest": decision.policy_digest,
            },
        )

    @dg.asset(
        key=key(model, "approval_request"),
        kinds={"evidence"},
        **common,
        **stored_as("approval_request.json"),
        ins={
            "gate": dg.AssetIn(key(model, "release_gate")),
            "trained": dg.AssetIn(key(model, "trained_model")),
            "card": dg.AssetIn(key(model, "model_card")),
            "performance": dg.AssetIn(key(model, "performance_report")),
            "fairness": dg.AssetIn(key(model, "fairness_report")),
            "explainability": dg.AssetIn(key(model, "explainability_report")),
        },
        output_required=False,
        description="The sealed evidence pack (SHA-256 manifest, one pack digest) waiting for a human decision. "
        "Not materialized for a version the release gate denied: that version stops at its gate decision.",
    )
    def approval_request(
        context: dg.AssetExecutionContext,
        governance: GovernanceResource,
        gate: dict,
        trained: dict,
        card: dict,
        performance: dict,
        fairness: dict,
        explainability: dict,
    ) -> Iterator[dg.Output[dict]]:
        decision = gate  # gate_decision.json, verified against its materialization's digest by the IO manager
        if not decision["allowed"]:
            context.log.info(
                f"{context.partition_key}: the release gate denied this version (see release_gate's "
                f"{GATE_CHECK} check for this partition); nothing is sealed or submitted for approval"
            )
            return
        if decision["valid_until"] and parse_utc(decision["valid_until"]) <= utc_now():
            raise GovernanceError(
                f"{context.partition_key}: the gate passed on a waiver that expired at "
                f"{decision['valid_until']}; run the release gate again"
            )
        settings, services, version = governance.settings, governance.services, context.partition_key
        documents = {
            "performance.json": performance,
            "fairness.json": fairness,
            EXPLAINABILITY_FILE: explainability,
            GATE_FILE: decision,
        }
        files = {
            "model_card.html": Path(card["html_path"]),
            "model_card.md": Path(card["markdown_path"]),
            **{name: stored_path(settings, model.name, version, name) for name in documents},
            "validation.json": validation_path(settings, model.name, trained["data_md5"]),
        }
        files.update({f"plots/{p.name}": p for p in sorted((Path(card["html_path"]).parent / "plots").iterdir())})
        # The policy bundle the gate applied, so the evidence says which rules were in force, byte for byte.
        bundle = services.policies
        if bundle.digest != decision["policy_digest"]:
            raise GovernanceError(
                f"{context.partition_key}: the policies changed since the gate decided "
                f"({decision['policy_digest'][:12]} -> {bundle.digest[:12]}); run the release gate again"
            )
        files.update({f"policy/{name}": bundle.directory / name for name in bundle.file_digests})
        facts = {
            "data_md5": trained["data_md5"],
            "artifact_sha256": trained["artifact_sha256"],
            "policy_digest": decision["policy_digest"],
            "mlflow_run_id": trained["run_id"],
            "registered_version": trained["version"],
            "code_version": trained["code_version"],
            "validation_digest": trained["validation_digest"],
            "gate_ledger_entry": recorded_gate_entry(services, model, version, decision).entry_hash,
            "decisioning": model.decisioning.model_dump(),  # serving decides with these, or not at all
        }
        pack = seal(settings.model_dir(model.name, version) / "evidence", model.name, version, files, facts)
        changed = [name for name, document in documents.items() if pack.manifest["files"][name] != digest_of(document)]
        if changed:
            raise GovernanceError(
                f"{pack.path}: {', '.join(changed)} changed after this step read and verified them; run it again"
            )
        publish(settings, pack.path)
        sealed_policy = {
            name.removeprefix("policy/"): digest
            for name, digest in pack.manifest["files"].items()
            if name.startswith("policy/")
        }
        if sealed_policy != dict(bundle.file_digests):
            raise GovernanceError(f"{pack.path}: the policy files changed while they were sealed; run it again")
        request = request_approval(services, pack, tuple(decision["requested_by"]))
        console = console_base(settings)  # the pack's files, each viewable, and its signed zip for an examiner
        context.log.info(f"{version}: evidence pack {pack.digest[:12]} sealed; awaiting a signed approval")
        services.registry.describe_version(
            model.name,
            trained["version"],
            f"{version}: release gate allowed (policy {decision['policy_digest'][:12]}); evidence pack "
            f"{pack.digest[:12]} sealed, awaiting a signed approval.",
            {"governance.evidence_pack": pack.digest, "governance.policy_digest": decision["policy_digest"]},
        )
        yield dg.Output(
            {
                "key": version,
                "pack_digest": pack.digest,
                "pack_path": str(pack.path),
                "ledger_entry": request.entry_hash,
            },
            metadata={
                "status": "pending approval",
                "evidence_pack_digest": pack.digest,
                "evidence_pack": dg.MetadataValue.url(evidence_pack_url(model.name, version, console)),
                "console": dg.MetadataValue.url(version_url(model.name, version, console)),
                "manifest": md_table(["file", "sha256"], [[n, d] for n, d in pack.manifest["files"].items()]),
                "facts": md_table(["fact", "value"], [[k, v] for k, v in facts.items()]),
                "approve_with": f"govern approve {model.name} {version} --as <model risk approver>",
                "ledger_entry": request.entry_hash,
            },
            data_version=dg.DataVersion(pack.digest),
        )

    @dg.asset(
        key=key(model, "approved_release"),
        kinds={"ed25519"},
        **common,
        deps=[key(model, "approval_request")],
        description="Exists only when a valid signed approval of exactly this version's sealed evidence "
        "exists: verified here, never taken from upstream.",
    )
    def approved_release(
        context: dg.AssetExecutionContext, governance: GovernanceResource, ledger: LedgerResource
    ) -> dg.MaterializeResult:
        approval, pack = valid_approval(governance.services, model.name, context.partition_key, "approved_release")
        links = ledger.record(
            events.ReleaseApproved(
                actor=actor("approved_release"),
                model=model.name,
                version=context.partition_key,
                statement=approval.statement_digest,
                evidence_pack=pack.digest,
                approver=approval.principal,
                roles=tuple(approval.roles),
            ),
        )
        return dg.MaterializeResult(
            data_version=dg.DataVersion(approval.statement_digest),
            metadata={
                "approver": approval.principal,
                "role": ", ".join(approval.roles),
                "approved_at": approval.issued_at,
                "comment": approval.comment or "-",
                "statement_digest": approval.statement_digest,
                "evidence_pack_digest": pack.digest,
                "policy_digest": approval.policy_digest,
                **links,
            },
        )

    @dg.asset(
        key=key(model, "production_deployment"),
        kinds={"mlflow"},
        **common,
        deps=[key(model, "approved_release")],
        description="Moves the MLflow champion alias to this version after re-verifying the approval and "
        "the artifact digest itself.",
    )
    def production_deployment(
        context: dg.AssetExecutionContext, governance: GovernanceResource, ledger: LedgerResource
    ) -> dg.MaterializeResult:
        services = governance.services
        approval, pack = valid_approval(services, model.name, context.partition_key, "production_deployment")
        move = deploy(services, approval, pack, actor="system:production_deployment")
        completed = services.ledger.latest(events.DeploymentCompleted, model=model.name, version=context.partition_key)
        serving = observe_serving(services, model)
        context.log_event(serving.observation())
        context.log.info(f"{context.partition_key} deployed; serving state: {serving.serving}")
        services.registry.describe_version(  # from the verified approval and pack: tags are caches, never read
            model.name,
            move.version,
            f"{context.partition_key}: approved by {approval.principal} on evidence pack {pack.digest[:12]}, "
            f"deployed by Dagster run {context.run_id}.",
            {
                "governance.evidence_pack": pack.digest,
                "governance.approver": approval.principal,
                "governance.approval_statement": approval.statement_digest,
                "governance.dagster_run": context.run_id,
            },
        )
        return dg.MaterializeResult(
            data_version=dg.DataVersion(move.artifact_sha256),
            metadata={
                "deployed": context.partition_key,
                "previous_champion": version_key(model.name, move.previous_version) if move.previous_version else None,
                "serving_when_deployed": serving.serving,  # of its time: serving_state shows it now
                "artifact_sha256": move.artifact_sha256,
                "evidence_pack_digest": pack.digest,
                "policy_digest": pack.facts["policy_digest"],
                "data_md5": pack.facts["data_md5"],
                "approver": approval.principal,
                "approval_statement": approval.statement_digest,
                "deployment_id": dg.MetadataValue.text(str(move.id)),
                "deployed_at": move.finished_at or move.started_at,
                **(ledger.links(completed.entry_hash, completed.seq) if completed else {}),
                "console": dg.MetadataValue.url(
                    version_url(model.name, context.partition_key, console_base(governance.settings))
                ),
            },
        )

    return [release_gate, approval_request, approved_release, production_deployment]


def recorded_gate_entry(services: Services, model: GovernedModel, version: str, decision: dict) -> events.GateDecided:
    """The ledger entry that recorded exactly this gate decision (the pack seals it as a fact). Once retention
    removed an entry's detail, its digests and outcome identify the decision."""
    recorded = [
        gate
        for gate in services.ledger.events(events.GateDecided, model=model.name, version=version)
        if (gate.policy, gate.evidence, gate.allowed)
        == (decision["policy_digest"], decision["evidence_digest"], decision["allowed"])
        and (gate.expired or gate.decision == decision)
    ]
    if not recorded:
        raise GovernanceError(
            f"{version}: no release-gate decision in the ledger is the one in {GATE_FILE} (decided at "
            f"{decision['decided_at']}); run the release gate again"
        )
    return recorded[-1]


def _denial_rows(decision) -> list[list]:
    rows = []
    for denial in decision.denials:
        for finding in denial.findings or [None]:
            rows.append(
                [
                    denial.rule,
                    finding and finding.measured,
                    finding and finding.requirement,
                    denial.waiver.granted_by if denial.waiver else "",
                    denial.waiver and denial.waiver.until,
                ]
            )
    return rows
