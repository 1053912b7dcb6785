"""What `govern status` reports: per model, the champion and the move that set it, the kill switch, what
waits for whom, and each version with the state of each of its assets. Interrupted champion moves are
settled first."""

from datetime import UTC, datetime, timedelta

from governance import events
from governance.abandoned import abandoned
from governance.config import GovernanceConfig, GovernedModel
from governance.control import KillSwitch
from governance.errors import GovernanceError
from governance.monitoring.recorded import drift_since_trained
from governance.registry import parse_version_key
from governance.release.approvals import (
    ApprovalRefused,
    ApprovalRequest,
    approval_lapsed,
    approval_stage,
    deployed_approvals,
    latest_request,
    release_abandoned,
    who_may_approve,
)
from governance.release.deployment import reconcile
from governance.release.outcome import gate_reasons
from governance.release.production import Production, confirmed_production, open_incidents, record_incidents
from governance.release.requests import requesters
from governance.release.services import Services
from governance.settings import Settings
from governance.timestamps import parse_utc, utc_now
from governance.trust.roster import BUSINESS_OWNER_ROLE, Roster
from governance_assets.names import candidate_job_name
from programs.dagster_records import DagsterRecords

DATA_ASSETS = ("applications", "validated_applications")
VERSION_ASSETS = (
    "trained_model",
    "performance_report",
    "fairness_report",
    "explainability_report",
    "model_card",
    "release_gate",
    "approval_request",
    "approved_release",
    "production_deployment",
)
ASSETS = DATA_ASSETS + VERSION_ASSETS
CHECKPOINT_DUE = timedelta(hours=25)  # a daily checkpoint, and an hour's slack


def model_status(dagster: DagsterRecords, services: Services, model: GovernedModel) -> dict:
    try:
        return _model_status(dagster, services, model)
    except GovernanceError as exc:  # an altered ledger entry the signed record rests on: nothing can be vouched for
        return _unverifiable(services, model, exc)


def _unverifiable(services: Services, model: GovernedModel, problem: GovernanceError) -> dict:
    """A model whose signed record cannot be verified: what serving does about it (the safe state), and the
    problem as its incident; nothing else is shown as if it were known."""
    return {
        "model": model.name,
        "risk_tier": model.risk_tier,
        "champion": None,
        "champion_alias": None,
        "last_move": None,
        "kill_switch": {"on": True, "reason": UNVERIFIABLE, "by": None, "at": None, "signed": False},
        "incidents": [f"the signed record cannot be verified: {problem}"],
        "trust": trust_warnings(services.settings),
        "awaiting_approval": [],
        "awaiting_release": [],
        "retraining": None,
        "data": {},
        "versions": [],
        "unverifiable": str(problem),
    }


def _model_status(dagster: DagsterRecords, services: Services, model: GovernedModel) -> dict:
    reconcile(services, model.name)
    production = confirmed_production(services, model.name)
    record_incidents(services, model.name, production.incidents, actor="system:status")
    keys = dagster.versions(model.name)
    switch = services.control.kill_switch(model.name)
    deployed = deployed_approvals(services, model.name)
    requests = [request for k in keys if (request := _request(services, model.name, k))]
    stages = [(request, *stage) for request in requests if (stage := approval_stage(services, request, deployed))]
    return {
        "model": model.name,
        "risk_tier": model.risk_tier,
        "champion": production.champion,
        "champion_alias": services.registry.champion(model.name),
        "last_move": _last_move(production.move),
        "kill_switch": _kill_switch(production, switch),
        "incidents": open_incidents(services, production),
        "trust": trust_warnings(services.settings)
        + checkpoint_warnings(services)
        + owner_warnings(services.roster, model),
        "awaiting_approval": [_awaiting(services, request) for request, stage, _ in stages if stage == "pending"],
        "awaiting_release": [
            _approved(services, request, by) for request, stage, by in stages if stage == "awaiting_release"
        ],
        "retraining": _retraining(dagster, services, model),
        "data": {name: _latest(dagster, model, name, None) for name in DATA_ASSETS},
        "versions": [_version(dagster, services, model, k) for k in keys],
    }


def _version(dagster: DagsterRecords, services: Services, model: GovernedModel, version: str) -> dict:
    found = {**_asked_and_gated(services, model.name, version), "key": version}
    if found["gate"] is None:
        found["failed_run"] = _failed_run(dagster, model.name, version)
    return {**found, "assets": {name: _latest(dagster, model, name, version) for name in VERSION_ASSETS}}


def _failed_run(dagster: DagsterRecords, model: str, version: str) -> dict | None:
    """The version's latest candidate run, if it failed: when, and each failed step and blocking check, why."""
    run = dagster.latest_run(candidate_job_name(model), version)
    if run is None or run[1] != "FAILURE":
        return None
    return {"run_id": run[0], "reasons": dagster.run_failures(run[0])}


def _asked_and_gated(services: Services, model: str, version: str) -> dict:
    """Who verifiably asked for the version (or that nobody is known to have), and its gate's latest outcome
    with the reasons of every rule that denied."""
    asked = requesters(services, model, version)
    gate = services.ledger.latest(events.GateDecided, model=model, version=version)
    return {
        "requested_by": asked.describe(),
        "unverified_requests": list(asked.unverified),
        "gate": None if gate is None else {"allowed": gate.allowed, "at": gate.ts, "reasons": gate_reasons(gate)},
    }


def _retraining(dagster: DagsterRecords, services: Services, model: GovernedModel) -> dict | None:
    """The model's latest retraining request unless a candidate run answered it: open (the runs launched for it so
    far), or abandoned (the retraining sensor gave up on it after its runs never answered it). Reads runs through
    the Dagster instance, imported only when a request exists."""
    requested = services.ledger.latest(events.RetrainingRequested, model=model.name)
    if requested is None:
        return None
    import dagster as dg

    from jobs.monitoring import retraining_runs
    from sensors.attempts import ended

    runs = retraining_runs(dagster.instance(), model, requested)
    if any(run.status == dg.DagsterRunStatus.SUCCESS for run in runs):
        return None
    found = {
        "ledger_entry": requested.seq,
        "requested_at": requested.ts,
        "trigger": requested.trigger,
        "runs": [ended(run) for run in runs],
        "state": "open",
    }
    given_up = abandoned(services, model.name, requested.seq)
    return found if given_up is None else {**found, "state": "abandoned", "abandoned": _given_up(given_up)}


def _given_up(event: events.RequestAbandoned) -> dict:
    return {"ledger_entry": event.seq, "at": event.ts, "runs": list(event.runs), "reason": event.reason}


UNVERIFIABLE = "unknown: the signed record cannot be verified, so serving answers in the safe state"


def _kill_switch(production: Production, row: KillSwitch) -> dict:
    """The kill switch as the latest verified signed statement sets it (on also while its row says on)."""
    flip = production.flip
    if flip is None:
        return {"on": row.disabled, "reason": row.reason, "by": row.changed_by, "at": row.changed_at, "signed": False}
    return {
        "on": production.kill_switch or row.disabled,
        "reason": flip.reason,
        "by": flip.actor,
        "at": flip.ts,
        "signed": True,
        "ledger_entry": flip.seq,
    }


def trust_warnings(settings: Settings) -> list[str]:
    """Where the state dir holds trust material (demo trust): anyone who can write it can sign as anyone; and
    whether the scoring API is open to anyone who can reach it."""
    found = []
    if not settings.production:
        found.append(
            f"the scoring API is {settings.api_authentication}: whoever can reach it gets decisions, the ledger "
            "and the console without a token"
        )
    if settings.roster_path.is_relative_to(settings.home):
        found.append(
            f"the roster is in the state dir ({settings.roster_path}): whoever can write the state dir "
            "decides who may approve (demo trust; production reads policies/roster.yaml or GOVERN_ROSTER)"
        )
    if settings.policies_dir.is_relative_to(settings.home):
        found.append(
            f"the Cedar policies are in the state dir ({settings.policies_dir}): whoever can write it "
            "decides the rules (keep them under version control and point GOVERN_POLICIES at them)"
        )
    keys = sorted(settings.keys_dir.glob("*.key")) if settings.keys_dir.is_dir() else []
    if keys:
        found.append(
            f"{len(keys)} private keys are in the state dir ({settings.keys_dir}): whoever can read it can "
            "sign as those principals (demo trust; keep people's keys on their own machines)"
        )
    return found


def checkpoint_warnings(services: Services) -> list[str]:
    """No signed checkpoint of the ledger taken within `CHECKPOINT_DUE`: a deleted tail of the ledger shows only
    against a checkpoint kept outside the database, so one taken long ago leaves that much of the history unproven."""
    if services.ledger.size() == 0:
        return []
    taken = services.ledger.latest(events.LedgerCheckpointed, model=events.ALL_MODELS, checked=False)
    if taken is not None and utc_now() - parse_utc(taken.ts) <= CHECKPOINT_DUE:
        return []
    when = (
        "no signed checkpoint of the ledger was ever taken"
        if taken is None
        else (
            f"the newest signed checkpoint of the ledger was taken at {taken.ts}, over "
            f"{CHECKPOINT_DUE.total_seconds() / 3600:.0f} hours ago"
        )
    )
    return [
        f"{when}: entries deleted from the ledger's tail since then would go unseen (`govern ledger checkpoint "
        "--out FILE` on a schedule, kept where the database's administrators cannot write, then `govern ledger "
        "verify --checkpoint FILE`; docs/operations.md)"
    ]


def owner_warnings(roster: Roster, model: GovernedModel) -> list[str]:
    """A business owner the roster cannot stand behind: found now, not when the kill switch has to be lifted."""
    owner = model.owners.business_owner
    principal = roster.principals.get(owner)
    if principal is None:
        problem = "is not in the roster"
    elif BUSINESS_OWNER_ROLE not in principal.roles:
        problem = f"has no {BUSINESS_OWNER_ROLE} role in the roster (roles: {', '.join(sorted(principal.roles))})"
    else:
        return []
    return [
        f"business owner {owner} {problem}: nobody can switch {model.name} back on after the kill switch, nor "
        f"approve its medium- and low-risk versions (`govern roster add {owner} --role {BUSINESS_OWNER_ROLE} "
        "--public-key FILE`, or name another owner in the config)"
    ]


def status(dagster: DagsterRecords, services: Services, config: GovernanceConfig) -> list[dict]:
    return [model_status(dagster, services, model) for model in config.models.values()]


def _request(services: Services, model: str, version: str) -> ApprovalRequest | None:
    """The version's latest approval request; None if its gate never passed."""
    try:
        return latest_request(services, model, version)
    except ApprovalRefused:
        return None


def _awaiting(services: Services, request: ApprovalRequest) -> dict:
    """A pending version: the pack it waits on, drift alerted since it was trained (its evidence predates it),
    and who may approve it, or why nobody can."""
    waiting = {"version": request.version, "evidence_pack": request.pack_digest}
    newer = drift_since_trained(services.ledger, services.settings, request.model, request.version)
    if newer:
        waiting["predates_drift"] = newer
    try:
        return {**waiting, "may_approve": who_may_approve(services, request)}
    except GovernanceError as exc:
        return {**waiting, "may_approve": [], "cannot_be_approved": str(exc)}


def _approved(services: Services, request: ApprovalRequest, approver: str) -> dict:
    """An approved version waiting for its release: whether the approvals sensor gave up on releasing it (its
    release runs never ran), and why the release will refuse it if its approval has lapsed (the waiver its gate
    passed on ended, the model's risk tier was raised, its pack no longer verifies)."""
    approved: dict = {"version": request.version, "approved_by": approver}
    given_up = release_abandoned(services, request)
    if given_up is not None:
        approved["release_abandoned"] = _given_up(given_up)
    try:
        lapsed = approval_lapsed(services, request.model, request.version, request.pack_digest)
    except GovernanceError as exc:
        lapsed = str(exc)
    return {**approved, "cannot_be_released": lapsed} if lapsed else approved


def _last_move(move: events.MoveStep | None) -> dict | None:
    """The verified move that set the champion (a deployment or a rollback), and who made it."""
    if move is None:
        return None
    return {
        "kind": move.kind,
        "version": parse_version_key(move.version)[1],
        "previous_version": move.previous_version,
        "by": move.actor,
        "at": move.ts,
    }


def _latest(dagster: DagsterRecords, model: GovernedModel, asset: str, partition: str | None) -> dict:
    """The newest materialization of one asset partition. (Dagster's SQL storages, ours, answer no failed
    materialization: a failed run shows as the version's `failed_run`.)"""
    done = dagster.latest(model.name, asset, partition)
    if done is None:
        return {"state": "missing"}
    metadata = done.metadata
    facts = {k: metadata[k] for k in ("dvc_md5", "passed", "complete", "allowed", "champion") if k in metadata}
    return {"state": "materialized", "at": _iso(done.timestamp), "run_id": done.run_id, **facts}


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
