"""`govern lineage | trace | evidence | retention`: what auditors and examiners ask for.

govern lineage MODEL VERSION          the version's chain, every step with its ledger entry and proof
govern trace DECISION_ID              a served decision, what was in force, then its version's lineage
govern evidence MODEL VERSION --out F a signed, self-contained evidence pack (zip)
govern evidence verify F              check a pack offline; names any file that does not match
govern retention                      apply the configured retention periods
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from governance.cli.output import emit
from governance.cli.release import normalise_version
from governance.errors import GovernanceError
from governance.settings import Settings

ModelArg = Annotated[str, typer.Argument(help="governed model, e.g. credit_scoring")]
VersionArg = Annotated[str, typer.Argument(help="version: 3, v3 or credit_scoring-v3")]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _services(settings: Settings):
    from governance.release.services import Services

    return Services(settings)


def _reading(settings: Settings):
    """Services for a command that only reads: what it fetches from the object store stays out of the state dir."""
    from governance.objectstore import for_reading

    return _services(for_reading(settings))


# --- lineage -----------------------------------------------------------------------------------


def lineage(ctx: typer.Context, model: ModelArg, version: VersionArg, as_json: JsonOption = False) -> None:
    """A version's lineage, each step with its ledger entry and inclusion proof (exit 1 on any finding).

    Data snapshot, validation, training run, reports and card, gate decision, waivers, evidence pack,
    approvals, deployments and rollbacks, kill switch, monitoring."""
    from governance.lineage.chain import version_lineage

    found = version_lineage(_reading(ctx.obj), model, normalise_version(model, version))
    emit(found.document, as_json, lineage_text)
    _exit_on_findings(found.document["findings"])


def _exit_on_findings(findings: list[str]) -> None:
    """A lineage that does not fully verify (tampered entry, missing step) is printed, then exits 1."""
    if findings:
        raise typer.Exit(1)


def _ref(citation: dict | None) -> str:
    if not citation:
        return ""
    return f"[#{citation['seq']} {'ok' if citation['verified'] else 'DOES NOT VERIFY'}]"


def _line(label: str, text: str, citation: dict | None = None) -> str:
    return f"  {label:<12}{text}  {_ref(citation)}".rstrip()


def lineage_text(doc: dict) -> str:
    s = doc["summary"]
    data, validation, training, gate, pack = (
        doc[k] or {} for k in ("data", "validation", "training", "gate", "evidence_pack")
    )
    lines = [
        f"{doc['version']}: {s['status']}",
        _line(
            "data",
            f"DVC md5 {data.get('dvc_md5')}, {data.get('rows')} rows, source {data.get('source')}",
            data.get("entry"),
        ),
        _line(
            "validation",
            f"{'passed' if validation.get('passed') else 'FAILED'}, suite "
            f"{validation.get('suite')}, {validation.get('failed_expectations')} failed",
            validation.get("entry"),
        ),
        _line(
            "training",
            f"MLflow run {training.get('mlflow_run_id')}, code {training.get('code_version')}, "
            f"artifact sha256 {training.get('artifact_sha256')}",
            training.get("entry"),
        ),
    ]
    if training.get("params"):
        lines.append(_line("", "params: " + ", ".join(f"{k}={v}" for k, v in training["params"].items())))
    for report in doc["reports"]:
        sealed = "sealed in the evidence pack" if report["sealed"] else "not the sealed copy"
        lines.append(_line("report", f"{report['report']} sha256 {report['sha256']} ({sealed})", report["entry"]))
    if gate:
        denials = (
            ", ".join(
                d["rule"] + (f" (waived by {d['waiver']['granted_by']})" if d["waiver"] else "")
                for d in gate["denials"]
            )
            or "none"
        )
        verdict = {True: "allowed", False: "DENIED"}.get(gate["allowed"], "decided (payload expired)")
        lines.append(
            _line(
                "gate",
                f"{verdict} under policy "
                f"{gate['policy_digest']}, {len(gate['rules_evaluated'] or [])} rules, "
                f"denials: {denials}",
                gate["entry"],
            )
        )
    lines += [
        _line("waiver", f"{w['rule']} until {w['until']} granted by {w['granted_by']}", w["entry"])
        for w in doc["waivers"]
    ]
    if pack:
        lines.append(
            _line(
                "evidence",
                f"pack {pack['digest']} {pack['status']}, candidate requested by {doc['requested']['text']}",
                pack["entry"],
            )
        )
    lines += [
        _line(
            "approval",
            f"{a['decision']} by {a['approver']} ({', '.join(a['roles'] or [])}) signed "
            f"{a['signed_at']}, statement {a['statement_digest']}",
            a["entry"],
        )
        for a in doc["approvals"]
    ]
    for move in doc["deployments"]:
        who = f"automated ({move['actor']})" if move["automated"] else f"by {move['actor']}"
        why = f", reason: {move['reason']}" if move["reason"] else ""
        lines.append(
            _line(
                move["kind"],
                f"#{move['id']} {move['from'] or '-'} -> {move['to']} {who}, "
                f"{move['status']} {move['finished_at'] or move['started_at']}{why}",
            )
            + " "
            + " ".join(_ref(e) for e in move["entries"])
        )
    lines += [
        _line("kill switch", f"{k['state']} by {k['by']} at {k['at']}: {k['reason']}", k["entry"])
        for k in doc["kill_switch"]["events"]
    ]
    lines += [
        _line(
            "monitoring",
            f"{m['action']} by {m['by']} at {m['at']}"
            + "".join(f", {k} {(m['facts'] or {})[k]}" for k in ("stream", "window") if k in (m["facts"] or {})),
            m["entry"],
        )
        for m in doc["monitoring"]
    ]
    lines += [
        _line("refused", f"{r['action']} by {r['by']} at {r['at']}: {r['reason']}", r["entry"]) for r in doc["refusals"]
    ]
    lines.append(
        _line(
            "ledger",
            f"proofs against the root {doc['ledger']['root']} of the first "
            f"{doc['ledger']['size']} entries; {len(doc['other_events'])} other entries",
        )
    )
    lines += [_line("FINDING", finding) for finding in doc["findings"]] or [_line("findings", "none")]
    return "\n".join(lines)


# --- trace -------------------------------------------------------------------------------------


def trace(
    ctx: typer.Context,
    decision_id: Annotated[str, typer.Argument(help="the decision id the API returned")],
    registry: Annotated[bool, typer.Option("--registry", help="also cross-check the MLflow registry (slower)")] = False,
    as_json: JsonOption = False,
) -> None:
    """Trace one decision: its version, input digest, reasons, kill switch or rollback in force, lineage
    (exit 1 if the lineage has findings)."""
    from governance.decisions import DecisionLog
    from governance.lineage.trace import trace_decision

    settings: Settings = ctx.obj
    traced = trace_decision(_reading(settings), DecisionLog.for_settings(settings), decision_id, registry=registry)
    emit(traced, as_json, trace_text)
    _exit_on_findings(traced["findings"] + (traced["lineage"] or {}).get("findings", []))


def trace_text(traced: dict) -> str:
    d, switch, move = traced["decision"], traced["kill_switch"], traced["in_force"]
    score = "no score" if d["score"] is None else f"score {d['score']:.4f}"
    lines = [
        f"decision {d['decision_id']} at {d['ts']}: {d['outcome']}, {score}, by {d['version'] or 'no version (safe state)'}",
        f"  input digest sha256 {d['input_digest']}"
        + ("" if d["inputs_retained"] else " (inputs expired by retention)"),
        "  reasons: "
        + ("; ".join(f"{r.get('code')} {r.get('text')}" for r in d["reasons"]) or "none")
        + _withheld_text(d["reasons_withheld"]),
        f"  {_sealed_text(traced['seal'])}",
    ]
    if d["safe_state_reason"]:
        lines.append(f"  safe state: {d['safe_state_reason']}")
    change = switch["last_change"]
    lines.append(
        f"  kill switch: {'ON' if switch['on'] else 'off'}"
        + (f" (last set {change['state']} by {change['by']} at {change['at']}: {change['reason']})" if change else "")
    )
    if move:
        who = f"automated ({move['actor']})" if move["automated"] else f"by {move['actor']}"
        lines.append(
            f"  in force: {move['kind']} #{move['id']} to {move['version']} {who}, completed "
            f"{move['completed_at']}" + (" -- ROLLBACK IN FORCE" if traced["rollback_in_force"] else "")
        )
    approval = traced.get("approval")
    if approval:
        lines.append(
            f"  approved by {approval['approver']} ({', '.join(approval['roles'] or [])}) at "
            f"{approval['signed_at']}, statement {approval['statement_digest']}"
        )
    lines += [f"  FINDING {finding}" for finding in traced["findings"]]
    if traced["lineage"]:
        lines += ["", lineage_text(traced["lineage"])]
    return "\n".join(lines)


def _withheld_text(withheld: int | None) -> str:
    """The reasons the proxy screen kept out; a safe-state answer has no reasons to screen."""
    return "" if withheld is None else f" ({withheld} withheld as a protected attribute or flagged proxy)"


def _sealed_text(seal: dict) -> str:
    if "ledger_entry" not in seal:
        return (
            f"seal: {seal['status']} (a decision is sealed into the ledger once it is a minute old, by `govern guard` "
            "or by `govern decisions seal`)"
        )
    first, last = seal["range"]
    return f"seal: {seal['status']} (ledger entry {seal['ledger_entry']}, seq {first}..{last})"


# --- evidence ----------------------------------------------------------------------------------


class _ExportByDefault(TyperGroup):
    """`govern evidence MODEL VERSION --out F` is `govern evidence export ...`; `verify` stays a subcommand."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:  # ctx: typer's own click Context
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["export", *args]
        return super().parse_args(ctx, args)


evidence_app = typer.Typer(
    cls=_ExportByDefault,
    no_args_is_help=True,
    help="Evidence packs: `govern evidence MODEL VERSION --out FILE`, `govern evidence verify FILE`.",
)


@evidence_app.command("export")
def export(
    ctx: typer.Context,
    model: ModelArg,
    version: VersionArg,
    out: Annotated[Path, typer.Option("--out", help="the archive to write (.zip)")],
    as_json: JsonOption = False,
) -> None:
    """Write a version's evidence pack (zip), signed by the system key.

    Model card, reports, policy bundle and gate decision, approvals and waivers, ledger excerpt with
    inclusion proofs and a signed checkpoint, the control map, and a manifest of SHA-256 digests."""
    from governance.lineage.pack import export_evidence

    written = export_evidence(_reading(ctx.obj), model, normalise_version(model, version), out.resolve())
    emit(
        written.to_dict(),
        as_json,
        lambda w: "\n".join(
            [
                f"evidence pack written: {w['path']} ({w['files']} files, {w['bytes'] // 1024} KiB)",
                f"  manifest sha256 {w['manifest_sha256']}, signed by the system key",
                f"  ledger checkpoint of {w['checkpoint_size']} entries",
                *(f"  FINDING {finding}" for finding in w["findings"]),
            ]
        ),
    )


@evidence_app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="an evidence pack (.zip)")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Ed25519 public key the pack must be signed with, as PEM or the 'ed25519:...' line govern keygen "
            "prints (else: the key it carries)",
        ),
    ] = None,
    roster: Annotated[
        Path | None,
        typer.Option(
            "--roster",
            help="roster file whose keys the statements must be signed with (else: the roster the pack carries)",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check an evidence pack offline; name each file that does not match (exit 1).

    Every file against the signed manifest, the signature, the roster, the ledger proofs against the
    signed checkpoint, and the approved evidence against the approval statements."""
    from governance.lineage.verify import verify_pack
    from governance.trust.roster import Roster

    trusted = {name: p.key_line for name, p in Roster.load(roster).principals.items()} if roster else None
    checked = verify_pack(file, _pinned_key(public_key) if public_key else None, trusted)
    emit(checked.to_dict(), as_json, _verification_text)
    if not checked.ok:
        raise typer.Exit(1)


def _pinned_key(path: Path):
    """A PEM public key, or the one-line `ed25519:<base64>` form `govern keygen` prints and the roster holds."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from governance.trust.keys import KEY_PREFIX, PublicKeyError, parse_public_key_line

    try:
        content = path.read_bytes()
    except OSError as exc:
        raise GovernanceError(f"{path}: cannot read the public key: {exc.strerror}") from None
    if content.strip().startswith(KEY_PREFIX.encode()):
        try:
            return parse_public_key_line(content.strip().decode("ascii", errors="replace"))
        except PublicKeyError as exc:
            raise GovernanceError(f"{path}: {exc}") from None
    try:
        key = load_pem_public_key(content)
    except (ValueError, TypeError):
        raise GovernanceError(f"{path}: not a PEM public key, nor a line 'ed25519:<base64>'") from None
    if not isinstance(key, Ed25519PublicKey):
        raise GovernanceError(f"{path}: not an Ed25519 public key")
    return key


def _verification_text(checked: dict) -> str:
    head = (
        f"evidence pack OK: {checked['version']}, {checked['files']} files match the signed manifest"
        if checked["ok"]
        else f"evidence pack FAILED: {checked['archive']}"
    )
    return "\n".join([head, *(f"  - {p}" for p in checked["problems"]), *(f"  note: {n}" for n in checked["notes"])])


# --- retention ---------------------------------------------------------------------------------


def retention(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Apply the config's retention periods, then verify the ledger (exit 1 if it does not).

    Deletes decisions past decision_log_days, expires decision inputs past decision_features_days and
    ledger payloads past ledger_payload_days (their digests and the chain stay)."""
    from governance.config import load_config
    from governance.lineage.retention import apply_retention

    settings: Settings = ctx.obj
    config = load_config(settings.config_path)
    run = apply_retention(_services(settings), config.retention, list(config.models))
    emit(
        run.to_dict(),
        as_json,
        lambda r: "\n".join(
            [
                f"retention applied at {r['at']}",
                *(f"  {what}: before {cutoff}" for what, cutoff in r["cutoffs"].items()),
                f"  decision inputs expired: {json.dumps(r['decision_inputs_expired'])}",
                f"  decisions deleted: {json.dumps(r['decisions_deleted'])}",
                f"  ledger payloads expired: {r['ledger_payloads_expired']}",
                "  ledger verifies" if r["ledger_ok"] else f"  LEDGER DOES NOT VERIFY: {r['ledger_problem']}",
            ]
        ),
    )
    if not run.ledger_ok:
        raise typer.Exit(1)
