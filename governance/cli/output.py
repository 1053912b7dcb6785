"""Printing results and errors the same way in every command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from shlex import quote
from typing import Any, NoReturn

import typer

from governance.errors import GovernanceError


def emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """Print `data` as JSON for machines or through `human` for people."""
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else human(data))


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run_guarded(app: typer.Typer) -> None:
    """Run the app; a GovernanceError becomes `error: ...` on stderr and exit status 2."""
    try:
        app(standalone_mode=True)
    except GovernanceError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


def materialize_command(settings, model: str, assets: tuple[str, ...], version: str) -> str:
    """The `dagster` command that materializes `assets` of one version on the state dir's own instance (what
    a headless user runs where the Dagster daemon would otherwise act)."""
    selection = ",".join(f"{model}/{asset}" for asset in assets)
    return (
        f"GOVERN_HOME={quote(str(settings.home))} GOVERN_CONFIG={quote(str(settings.config_path))} "
        f"DAGSTER_HOME={quote(str(settings.dagster_home))} dagster asset materialize -m definitions "
        f"--select '{selection}' --partition {version}"
    )
