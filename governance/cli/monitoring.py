"""`govern labels import FILE`: real outcomes joined to logged decisions, for performance and fairness monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from governance.cli.output import emit
from governance.config import load_config
from governance.decisions import DecisionLog
from governance.ledger import Ledger
from governance.settings import Settings

labels_app = typer.Typer(no_args_is_help=True, help="Outcome labels: real outcomes of logged decisions.")

CLI_ACTOR = "cli:labels_import"


@labels_app.command("import")
def import_labels(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or Parquet with exactly the columns decision_id and label")],
    model: Annotated[str | None, typer.Option("--model", help="refuse decisions of any other model")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Label logged decisions with their real outcomes; the whole file is checked first, then written at once."""
    from governance.monitoring.labels import import_labels as run_import

    settings: Settings = ctx.obj
    done = run_import(
        DecisionLog.for_settings(settings),
        Ledger.for_settings(settings),
        load_config(settings.config_path),
        file,
        actor=CLI_ACTOR,
        model=model,
    )
    emit(done.to_dict(), as_json, _describe)


def _describe(done: dict) -> str:
    labelled = ", ".join(f"{model}: {count}" for model, count in done["labelled"].items()) or "none"
    return (
        f"{done['rows']} labels read from {done['path']} (sha256 {done['sha256']})\n"
        f"  newly labelled: {labelled}; already labelled the same: {done['unchanged']}"
    )
