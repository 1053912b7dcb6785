"""`govern approve | reject | disable | enable | rollback`: the signed human actions on production.

Each command signs a statement with the principal's own key (`--key`, else the
state dir's demo key, else ~/.config/govern/keys/NAME.key), and the core
verifies it, asks Cedar and writes the ledger before anything changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from governance.cli.output import emit, materialize_command
from governance.registry import parse_version_key, version_key
from governance.release.services import Services
from governance.settings import Settings
from governance.trust.keys import load_private_key, signing_key_path
from governance.trust.roster import Roster

ModelArg = Annotated[str, typer.Argument(help="governed model, e.g. credit_scoring")]
VersionArg = Annotated[str, typer.Argument(help="version: 3, v3 or credit_scoring-v3")]
AsOption = Annotated[str, typer.Option("--as", help="your principal name in the roster")]
KeyOption = Annotated[
    Path | None,
    typer.Option("--key", help="your private key (default: the state dir's, then ~/.config/govern/keys/NAME.key)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


EvidenceOption = Annotated[
    str | None,
    typer.Option(
        "--evidence",
        help="digest of the evidence pack you reviewed (32 characters or more, as `govern status` shows "
        "it): refused if the pending pack is another one",
    ),
]


def approve(
    ctx: typer.Context,
    model: ModelArg,
    version: VersionArg,
    principal: AsOption,
    key: KeyOption = None,
    comment: Annotated[str, typer.Option(help="signed with the approval; no personal data")] = "",
    evidence: EvidenceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a version's pending evidence pack (model risk approvers; never who built or requested it)."""
    _decide(ctx.obj, "approve", model, version, principal, key, comment, evidence, as_json)


def reject(
    ctx: typer.Context,
    model: ModelArg,
    version: VersionArg,
    principal: AsOption,
    key: KeyOption = None,
    comment: Annotated[str, typer.Option(help="why; signed with the rejection")] = "",
    evidence: EvidenceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a version's pending evidence pack for good; releasing the version needs a new pack."""
    _decide(ctx.obj, "reject", model, version, principal, key, comment, evidence, as_json)


def disable(
    ctx: typer.Context,
    model: ModelArg,
    principal: AsOption,
    reason: Annotated[str, typer.Option(help="why production is stopped (signed, ledgered)")],
    key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Kill switch on: serving answers every request with "refer" to manual review."""
    _kill_switch(ctx.obj, model, True, principal, key, reason, as_json)


def enable(
    ctx: typer.Context,
    model: ModelArg,
    principal: AsOption,
    reason: Annotated[str, typer.Option(help="why it is safe again (signed, ledgered)")],
    key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Kill switch off (a person only): serving decides automatically again."""
    _kill_switch(ctx.obj, model, False, principal, key, reason, as_json)


def rollback(
    ctx: typer.Context,
    model: ModelArg,
    principal: AsOption,
    reason: Annotated[str, typer.Option(help="why (signed, ledgered)")],
    to: Annotated[str | None, typer.Option("--to", help="target version (default: the previous champion)")] = None,
    key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Return the champion to an earlier approved version (ML platform, or automation)."""
    from governance.release.deployment import rollback as roll_back

    settings: Settings = ctx.obj
    target = parse_version_key(normalise_version(model, to))[1] if to else None
    move = roll_back(Services(settings), model, principal, signing_key(settings, principal, key), reason, target)
    emit(
        {
            "model": model,
            "champion": version_key(model, move.version),
            "previous": version_key(model, move.previous_version) if move.previous_version else None,
            "deployment_id": move.id,
            "status": move.status,
        },
        as_json,
        lambda r: f"{model}: rolled back to {r['champion']} (was {r['previous']})",
    )


def normalise_version(model: str, version: str) -> str:
    """`3`, `v3` and `credit_scoring-v3` all name credit_scoring's registered version 3."""
    text = version.strip()
    if text.startswith(f"{model}-"):
        text = text[len(model) + 1 :]
    key = version_key(model, int(text.lstrip("v"))) if text.lstrip("v").isdigit() else version
    parse_version_key(key)
    return key


def _decide(
    settings: Settings,
    action: str,
    model: str,
    version: str,
    principal: str,
    key: Path | None,
    comment: str,
    evidence: str | None,
    as_json: bool,
) -> None:
    from governance.monitoring.recorded import drift_since_trained, predates_drift_text
    from governance.release.approvals import decide

    services = Services(settings)
    approval = decide(
        services,
        model,
        normalise_version(model, version),
        action,
        principal,
        signing_key(settings, principal, key),
        comment,
        reviewed=evidence,
    )
    verb = "approved" if action == "approve" else "rejected"
    then = _release_hint(settings, model, approval.version) if verb == "approved" else ""
    if approval.awaiting_second_approver:
        then = (
            "\n  recorded; a second approver must approve: nobody verifiably requested this version "
            "(no signed candidate request), so two different approvers are needed"
        )
    drifts = drift_since_trained(services.ledger, settings, model, approval.version)
    then += "".join(f"\n  WARNING: {predates_drift_text(drift)}" for drift in drifts)
    emit(
        {**approval.to_dict(), "decision": verb, "predates_drift": drifts},
        as_json,
        lambda r: (
            f"{r['version']} {verb} by {r['principal']} ({', '.join(r['roles'])}) at {r['issued_at']}\n"
            f"  evidence pack {r['evidence_digest']}\n  statement {r['statement_digest']}{then}"
        ),
    )


def _release_hint(settings: Settings, model: str, version: str) -> str:
    """What releases an approved version: the approval sensor only while the Dagster daemon runs, else the
    release run by hand on the same instance (this command cannot tell whether a daemon runs)."""
    return (
        "\n  released and deployed by the approval sensor if the Dagster daemon runs on this state dir "
        "(`govern ui`); headless, run the release yourself:"
        f"\n  {materialize_command(settings, model, ('approved_release', 'production_deployment'), version)}"
    )


def _kill_switch(
    settings: Settings, model: str, disabled: bool, principal: str, key: Path | None, reason: str, as_json: bool
) -> None:
    from governance.release.kill_switch import set_kill_switch

    state = set_kill_switch(
        Services(settings), model, disabled, principal, signing_key(settings, principal, key), reason
    )
    emit(
        state.__dict__,
        as_json,
        lambda s: (
            f"{model}: kill switch {'ON (safe state: every answer is refer)' if s['disabled'] else 'off'}"
            f" by {s['changed_by']} at {s['changed_at']}: {s['reason']}"
        ),
    )


def signing_key(settings: Settings, principal: str, key: Path | None):
    """The private key to sign as `principal`: `--key`, else the principal's key file. Without `--key`, a name
    that is not in the roster is named as such (not as a missing key file)."""
    if key is None:
        Roster.load(settings.roster_path).principal(principal)
    return load_private_key(key or signing_key_path(settings.keys_dir, principal))
