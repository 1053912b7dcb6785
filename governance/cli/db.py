"""`govern db upgrade` / `govern db current`: the schema of our own stores (ledger, statements, control state,
decision log), migrated with Alembic. Production runs `upgrade` once per release, before starting anything."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError

from governance import migrations
from governance.cli.output import emit, fail
from governance.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Schema migrations of the governance stores.")

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _urls(settings: Settings) -> dict[str, str]:
    return {"governance": settings.ledger_url, "decisions": settings.decisions_url}


def _line(found: migrations.SchemaState) -> str:
    where = "at head" if found.is_current else f"head is {found.head}: run `govern db upgrade`"
    return f"{found.schema}: {found.current or 'no migration'} ({where})"


def _each(settings: Settings, step) -> list[migrations.SchemaState]:
    try:
        return [step(url, schema) for schema, url in _urls(settings).items()]
    except OperationalError as exc:
        fail(f"cannot reach the governance database: {str(exc.orig).strip().splitlines()[0]}")


@app.command()
def current(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show each schema's revision; exit 1 if one is not at head (reads only)."""
    states = _each(ctx.obj, migrations.state)
    emit([s.to_dict() for s in states], as_json, lambda _: "\n".join(_line(s) for s in states))
    if not all(s.is_current for s in states):
        raise typer.Exit(1)


@app.command()
def upgrade(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Migrate each schema to head (one upgrade at a time; a second waits, then finds nothing to do)."""
    before = _each(ctx.obj, migrations.upgrade)
    report = [{"schema": s.schema, "from": s.current, "to": s.head} for s in before]

    def human(_) -> str:
        return "\n".join(
            f"{r['schema']}: already at {r['to']}"
            if r["from"] == r["to"]
            else f"{r['schema']}: {r['from'] or 'none'} -> {r['to']}"
            for r in report
        )

    emit(report, as_json, human)
