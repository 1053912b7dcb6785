"""`govern token create/revoke/list`: bearer tokens of the scoring API (required in production).

Issuing needs no signature: a token opens the API (scoring and reading), never a move or a kill-switch flip.
Issuing and revoking are ledgered with the operating-system user who ran the command, and a token counts only
while the ledger backs its row (`governance.serving.tokens`); `list` names every row it does not back, and
exits 1 then."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from governance.cli.output import emit
from governance.serving.tokens import TokenStore

app = typer.Typer(no_args_is_help=True, help="Bearer tokens of the scoring API.")

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="who or what uses the token (e.g. loan-frontend)")],
    as_json: JsonOption = False,
) -> None:
    """Issue a token; its secret is printed once and stored only as a digest."""
    token = TokenStore.for_settings(ctx.obj).create(name, _operator())
    emit({"token": token, "name": name}, as_json, lambda d: f"{d['token']}\n(shown once; keep it in a secret store)")


@app.command()
def revoke(
    ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="the token's id (`govern token list`)")]
) -> None:
    """Revoke a token; servers stop accepting it within 5 seconds."""
    TokenStore.for_settings(ctx.obj).revoke(token_id, _operator())
    typer.echo(f"revoked API token {token_id}")


@app.command("list")
def list_tokens(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Tokens issued, without their secrets; a row the ledger does not back is named REFUSED (exit 1)."""
    tokens = [vars(t) for t in TokenStore.for_settings(ctx.obj).list()]

    def human(rows) -> str:
        return (
            "\n".join(
                f"{r['token_id']}  {r['name']}  by {r['created_by']} at {r['created_at']}"
                + (f"  REVOKED {r['revoked_at']}" if r["revoked_at"] else "")
                + (f"\n  REFUSED: {r['problem']}" if r["problem"] else "")
                for r in rows
            )
            or "no API tokens"
        )

    emit(tokens, as_json, human)
    if any(t["problem"] for t in tokens):
        raise typer.Exit(1)
