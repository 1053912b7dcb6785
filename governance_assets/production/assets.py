"""Per model, observed: `serving_state`, production as the signed record says it is.

What the scoring API serves is derived from verified ledger moves and kill-switch flips
(`governance.release.production.verified_production`), never from a deployment row or the MLflow alias;
this asset shows exactly that on the graph: the verified champion and how it got there (deploy, a
person's rollback, automatic containment), the kill switch, the last rollback and every cache that
disagrees (an out-of-band alias or row). Its observations come from the approval sensor (each change,
within seconds), from the runs that move production, and from the UI's "Observe" button.
"""

from dataclasses import dataclass
from typing import Any

import dagster as dg

from governance import events
from governance.config import GovernedModel
from governance.console.links import console_base, ledger_entry_url, model_url
from governance.digests import digest_of
from governance.registry import version_key
from governance.release.production import Production, verified_moves, verified_production
from governance.release.services import Services
from governance_assets.common import group, key, md_table, owners, tags
from resources import GovernanceResource

DATA_VERSION_TAG = "dagster/data_version"  # how an observation outside an asset's own step carries one
SAFE_STATE = "safe state: every application is referred to manual review"


def serving_state_asset(model: GovernedModel) -> dg.AssetsDefinition:
    spec = dg.AssetSpec(
        key(model, "serving_state"),
        deps=[key(model, "production_deployment"), key(model, "remediation")],
        group_name=group(model, "production"),
        owners=owners(model),
        tags=tags(model, "production"),
        kinds={"ed25519"},
        description="What the scoring API serves, verified from the signed record: champion and how it got "
        "there, kill switch, last rollback, incidents (caches that disagree). Observed by the approval sensor.",
    )

    @dg.multi_observable_source_asset(name=f"{model.name}__serving_state", specs=[spec])
    def serving_state(context: dg.AssetExecutionContext, governance: GovernanceResource):
        observed = observe_serving(governance.services, model)
        context.log.info(f"{model.name} serving state: {observed.serving}")
        yield dg.ObserveResult(
            asset_key=spec.key, data_version=dg.DataVersion(observed.version), metadata=observed.metadata
        )

    return serving_state


@dataclass(frozen=True)
class ServingState:
    """One observation of a model's serving state: its data version (a digest of the state) and metadata."""

    model: GovernedModel
    version: str
    metadata: dict[str, Any]

    @property
    def serving(self) -> str:
        return str(self.metadata["serving"])

    def observation(self) -> dg.AssetObservation:
        return dg.AssetObservation(
            asset_key=key(self.model, "serving_state"),
            metadata=self.metadata,
            tags={DATA_VERSION_TAG: self.version},
        )


def observe_serving(services: Services, model: GovernedModel) -> ServingState:
    """The serving state of `model` as verified now; reads only (incidents are reported here, ledgered by the
    status and serving paths)."""
    production = verified_production(services, model.name)
    moves = verified_moves(services, model.name)
    rollback = next((m for m in reversed(moves) if m.kind == "rollback"), None)
    console = console_base(services.settings)
    metadata: dict[str, Any] = {
        "serving": _serving(model, production),
        "champion": version_key(model.name, production.champion) if production.champion else "none",
        "how": _how(production.move),
        "kill_switch": _switch(production),
        "last_rollback": _rollback_text(rollback),
        "incidents": md_table(["incident"], [[i] for i in production.incidents])
        if production.incidents
        else dg.MetadataValue.md("None: every cache agrees with the verified record."),
    }
    if production.move is not None:
        metadata.update(
            artifact_sha256=production.move.artifact,
            evidence_pack_digest=production.move.evidence_pack,
            approval_statement=production.move.approval,
            move_ledger_link=dg.MetadataValue.url(ledger_entry_url(production.move.seq, console)),
        )
    metadata["console"] = dg.MetadataValue.url(model_url(model.name, console))
    state = {
        "champion": production.champion,
        "move": production.move.seq if production.move else None,
        "kill_switch": production.kill_switch,
        "flip": production.flip.seq if production.flip else None,
        "incidents": list(production.incidents),
    }
    return ServingState(model, digest_of(state)[:16], metadata)


def _serving(model: GovernedModel, production: Production) -> str:
    if production.kill_switch:
        return f"KILL SWITCH ON: {SAFE_STATE}"
    if production.champion is None:
        return f"no verified champion: {SAFE_STATE}"
    return version_key(model.name, production.champion)


def _how(move: events.MoveStep | None) -> str:
    if move is None:
        return "no verified move"
    if move.kind == "deploy":
        return f"deployed by {move.actor} at {move.ts}"
    who = "automatic containment" if move.actor.startswith("system") else "rollback"
    return f"{who}: rolled back by {move.actor} at {move.ts}" + (f" ({move.reason})" if move.reason else "")


def _switch(production: Production) -> str:
    flip = production.flip
    if flip is None:
        return "off (never switched)"
    state = "ON" if production.kill_switch else "off"
    return f"{state} since {flip.ts} by {flip.actor}" + (f": {flip.reason}" if flip.reason else "")


def _rollback_text(move: events.MoveStep | None) -> str:
    if move is None:
        return "none"
    origin = f" from v{move.previous_version}" if move.previous_version else ""
    return f"to {move.version}{origin} by {move.actor} at {move.ts}"
