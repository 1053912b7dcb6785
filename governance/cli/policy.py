"""`govern policy check` (validate the Cedar policies) and `govern waive` (grant a signed waiver).

The policy bundle and the roster in force come from the settings
(`GOVERN_POLICIES`, `GOVERN_ROSTER`; see governance.settings). `policy check
--policies DIR` validates another bundle, e.g. a change under review.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer

from governance.cli.output import emit, fail, materialize_command
from governance.cli.release import normalise_version, signing_key
from governance.policy.bundle import PolicyBundle
from governance.policy.records import require_gate_decision
from governance.policy.waivers import grant_waiver
from governance.release.requests import version_subject
from governance.release.services import Services
from governance.settings import Settings
from governance.trust.roster import Roster

app = typer.Typer(no_args_is_help=True, help="Policy as code: validate the Cedar policy bundle.")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PoliciesOption = Annotated[
    Path | None, typer.Option("--policies", help="policy directory to check (default: the bundle in force)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.command("check")
def check(ctx: typer.Context, policies: PoliciesOption = None, as_json: JsonOption = False) -> None:
    """Validate every policy file against the schema; print the digest and each gate rule's thresholds."""
    bundle = PolicyBundle.load(policies or ctx.obj.policies_dir)
    result = {
        "directory": str(bundle.directory),
        "digest": bundle.digest,
        "rules": len(bundle.rules),
        "gate_rules": [
            {
                "id": rule.id,
                "message": rule.message,
                "location": rule.location,
                "unwaivable": rule.unwaivable,
                "thresholds": [
                    {"tier": check.tier or "every tier", "requirement": check.requirement} for check in rule.checks
                ],
            }
            for rule in bundle.gate_rules
        ],
    }
    emit(result, as_json, _human_check)


def waive(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="governed model, e.g. credit_scoring")],
    version: Annotated[str, typer.Argument(help="version: 3, v3 or credit_scoring-v3")],
    rule: Annotated[str, typer.Option("--rule", help="release-gate rule id, e.g. fairness.disparate_impact")],
    until: Annotated[
        str,
        typer.Option(
            "--until",
            help="last day the waiver applies, YYYY-MM-DD (it ends at the "
            "following midnight UTC), or an exact end like 2026-12-31T12:00:00Z",
        ),
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="why the rule is waived (signed with the waiver; no personal data)")
    ],
    principal: Annotated[str, typer.Option("--as", help="the compliance manager granting it (roster name)")],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="private key file (default: the state dir's, then ~/.config/govern/keys/NAME.key)"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Grant a signed, time-bound waiver of one release-gate rule for one model version."""
    settings: Settings = ctx.obj
    end = _parse_until(until)
    named = normalise_version(model, version)
    bundle = PolicyBundle.load(settings.policies_dir)
    services = Services(settings)
    store = services.statements
    subject = version_subject(services, model, named)  # refuses an ungoverned model, naming the governed ones
    require_gate_decision(store.ledger, model, named)
    granted = grant_waiver(
        bundle=bundle,
        roster=Roster.load(settings.roster_path),
        store=store,
        subject=subject,
        rule_id=rule,
        until=end,
        reason=reason,
        principal=principal,
        private_key=signing_key(settings, principal, key),
    )
    regate = materialize_command(settings, model, ("release_gate", "approval_request"), named)
    emit(
        {**granted.to_dict(), "policy_digest": bundle.digest, "next": regate},
        as_json,
        lambda r: (
            f"{_human_waiver(r)}\n  next: the gate counts the waiver when it runs again (Launchpad in the UI, "
            f"or headless):\n  {regate}"
        ),
    )


def _parse_until(text: str) -> datetime:
    """A date means through that day (UTC): the waiver ends at the next midnight."""
    if _DATE.match(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError:
            fail(f"--until {text!r}: not a calendar date")
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--until {text!r}: expected YYYY-MM-DD or an ISO 8601 time with its zone, e.g. 2026-12-31T12:00:00Z")
    if moment.tzinfo is None:
        fail(f"--until {text!r}: give the time zone (e.g. a trailing Z for UTC)")
    return moment.astimezone(UTC)


def _human_check(result: dict) -> str:
    lines = [
        f"policies OK: {result['directory']} ({result['rules']} rules, digest {result['digest']})",
        "release-gate rules:",
    ]
    for rule in result["gate_rules"]:
        flag = " [unwaivable]" if rule["unwaivable"] else ""
        lines.append(f"  {rule['id']}{flag}  ({rule['location']})")
        lines += [f"      {t['tier']}: {t['requirement']}" for t in rule["thresholds"]]
    return "\n".join(lines)


def _human_waiver(result: dict) -> str:
    return (
        f"waiver granted: {result['rule']} for {result['model']} version {result['version']} "
        f"until {result['until']}\n  by {result['granted_by']} at {result['granted_at']}: {result['reason']}\n"
        f"  statement {result['statement_digest']}, policy digest {result['policy_digest']}"
    )
