"""Printing results and errors the same way in every command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
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
