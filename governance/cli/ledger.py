"""`govern ledger ...`: verify the audit ledger, sign checkpoints of it, show its entries."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from governance import events
from governance.cli.output import emit
from governance.errors import GovernanceError
from governance.ledger import Checkpoint, Ledger, sign_checkpoint, verify_checkpoint_signature
from governance.settings import Settings
from governance.trust.keys import load_private_key, signing_key_path
from governance.trust.roster import Roster

app = typer.Typer(no_args_is_help=True, help="The audit ledger: verify, checkpoint, show.")

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise GovernanceError(f"{path}: cannot read the {what}: {exc.strerror}") from None


def _checkpoint(path: Path) -> Checkpoint:
    text = _read(path, "checkpoint").decode("utf-8", errors="replace")  # its errors name the file already
    try:
        return Checkpoint.from_json(text)
    except GovernanceError as exc:
        raise GovernanceError(f"{path}: {exc}") from None


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text)
        os.replace(partial, path)
    except OSError as exc:
        raise GovernanceError(f"{path}: cannot write the checkpoint: {exc.strerror}") from None


def _describe_report(report: dict) -> str:
    if not report["ok"]:
        return f"ledger FAILED at entry {report['first_bad_seq']}: {report['problem']}"
    text = f"ledger OK: {report['size']} entries verify, Merkle root {report['root']}"
    if report["checkpoint_size"] is not None:
        text += f"\nit extends the checkpoint of {report['checkpoint_size']} entries (consistency proof verified)"
    return text


@app.command()
def verify(
    ctx: typer.Context,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint", help="signed checkpoint the log must extend (its signer's key comes from the roster)"
        ),
    ] = None,
    signer: Annotated[
        str,
        typer.Option(
            "--signer", help="who must have signed the checkpoint (the principal that signs them on schedule)"
        ),
    ] = "system",
    as_json: JsonOption = False,
) -> None:
    """Recompute the chain and Merkle tree; name the first entry that does not verify (exit 1)."""
    signed = None
    if checkpoint is not None:
        signed = _checkpoint(checkpoint)
        if signed.signer != signer:  # anyone in the roster can sign a checkpoint of a log they rewrote
            raise GovernanceError(
                f"{checkpoint}: signed by {signed.signer!r}, not by {signer!r}; pass --signer if "
                "another principal signs your checkpoints"
            )
        roster = Roster.load(ctx.obj.roster_path)
        verify_checkpoint_signature(signed, roster.principal(signed.signer).public_key)
    report = Ledger.for_settings(ctx.obj).verify(signed)
    emit(report.to_dict(), as_json, _describe_report)
    if not report.ok:
        raise typer.Exit(1)


@app.command("checkpoint")
def checkpoint_command(
    ctx: typer.Context,
    signer: Annotated[
        str, typer.Option("--as", help="roster principal who signs (default: the system principal)")
    ] = "system",
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="the signer's private key (default: the system key, "
            "or the state dir's / ~/.config/govern/keys/NAME.key)",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the checkpoint here instead of stdout")] = None,
) -> None:
    """Verify the ledger and sign a checkpoint of its head (size, Merkle root, time); the ledger records that it was
    taken (`govern status` warns when none was taken for a day)."""
    settings: Settings = ctx.obj
    public_key = Roster.load(settings.roster_path).principal(signer).public_key
    default = settings.system_key_path if signer == "system" else signing_key_path(settings.keys_dir, signer)
    ledger = Ledger.for_settings(settings)
    signed = sign_checkpoint(ledger, load_private_key(key or default), signer)
    verify_checkpoint_signature(signed, public_key)  # a key that is not the roster's makes no checkpoint
    if out is not None:
        _write_atomically(out, signed.to_json() + "\n")
    # recorded once the checkpoint exists (a failed write records nothing, and status still warns)
    ledger.append(events.LedgerCheckpointed(actor=signer, model=events.ALL_MODELS, size=signed.size, root=signed.root))
    if out is None:
        typer.echo(signed.to_json())
    else:
        typer.echo(f"checkpoint of {signed.size} entries (root {signed.root}) signed by {signer}: {out}")


def _describe_entries(entries: list[dict]) -> str:
    if not entries:
        return "no ledger entries match"
    lines = []
    for entry in entries:
        subject = " ".join(f"{key}={value}" for key, value in entry["subject"].items())
        lines.append(f"#{entry['seq']:<6} {entry['ts']}  {entry['action']:<22} {subject}  by {entry['actor']}")
        if entry["altered"]:
            lines.append(f"        ALTERED: {entry['altered']} (run `govern ledger verify`)")
        for name, digest in entry["digests"].items():
            lines.append(f"        {name}: sha256 {digest}")
        payload = "(expired)" if entry["payload"] is None else json.dumps(entry["payload"], sort_keys=True)
        lines.append(f"        payload: {payload}")
        lines.append(f"        entry hash: {entry['entry_hash']}")
    return "\n".join(lines)


@app.command()
def show(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="only entries about this model")] = None,
    version: Annotated[str | None, typer.Option("--version", help="only entries about this model version")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help=f"only this action, e.g. {events.GateDecided.action}")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="the most recent N matching entries (0: all)")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List ledger entries, oldest first; an entry that no longer hashes to what it records is listed as ALTERED."""
    from governance.lineage.proofs import altered

    entries = Ledger.for_settings(ctx.obj).entries(
        model=model, version=version, action=action, limit=limit or None, checked=False
    )
    emit([{**entry.to_dict(), "altered": altered(entry.to_dict())} for entry in entries], as_json, _describe_entries)
