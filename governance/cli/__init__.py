"""`govern`: the command line of governance-assets, its commands over the governance core.

Human-readable output by default, `--json` for machines; every refusal or bad
input prints `error: ...` and exits non-zero. The commands that drive Dagster
(`demo`, `status`, `ui`) are mounted on this app by `programs.cli`, the `govern`
entry point: nothing here imports Dagster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from governance.cli import (
    audit,
    config,
    db,
    decisions,
    keys,
    ledger,
    monitoring,
    policy,
    release,
    serve,
    setup,
    token,
    train,
)
from governance.cli.output import fail
from governance.errors import GovernanceError
from governance.settings import Settings, apply_offline_env


class _Govern(TyperGroup):
    """Notes whether the command line asks for help, before the callback runs (which needs to know)."""

    def resolve_command(self, ctx, args):
        ctx.meta["asks_for_help"] = "--help" in args
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_Govern,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Govern high-risk ML models: gates, signed approvals, audit ledger, kill switch.",
)


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="governed models config (default: $GOVERN_CONFIG, else the state dir's own, else governance.yaml)",
        ),
    ] = None,
    home: Annotated[
        Path | None, typer.Option("--home", help="state directory (default: $GOVERN_HOME or .govern)")
    ] = None,
) -> None:
    apply_offline_env()
    ctx.obj = settings = Settings.from_env(config_path=config, home=home)
    if ctx.meta.get("asks_for_help") or ctx.invoked_subcommand == "init":  # init may point it at another config
        return
    try:
        if ctx.invoked_subcommand in CREATES_STATE:
            settings.require_its_config()
        else:
            settings.require_state()
    except GovernanceError as exc:
        fail(str(exc))


# Commands that run without an existing state (they create one, or read only files they are given).
CREATES_STATE = {"db", "demo", "ui", "serve", "keygen", "policy", "evidence", "config", "init", "roster"}


app.command("train")(train.train)
app.command("serve")(serve.serve)
app.command("guard")(serve.guard)
for command in (release.approve, release.reject, release.disable, release.enable, release.rollback):
    app.command(command.__name__)(command)
app.command("waive")(policy.waive)
app.add_typer(policy.app, name="policy")
app.add_typer(config.app, name="config")
app.command("init")(setup.init)
app.add_typer(setup.roster_app, name="roster")
app.add_typer(ledger.app, name="ledger")
app.add_typer(db.app, name="db")
app.add_typer(decisions.app, name="decisions")
app.add_typer(token.app, name="token")
app.command("keygen")(keys.keygen)
app.command("lineage")(audit.lineage)
app.command("trace")(audit.trace)
app.add_typer(audit.evidence_app, name="evidence")
app.command("retention")(audit.retention)
app.add_typer(monitoring.labels_app, name="labels")
