"""`govern`, the entry point (pyproject's `[project.scripts]`): the core's command line with the commands that
drive Dagster mounted on it.

`governance.cli` holds every command over the governance core and imports no Dagster; `demo`, `status` and
`ui` need the state dir's Dagster instance (programs.lifecycle), so they join the app here, above both.
"""

from __future__ import annotations

from governance.cli import app
from governance.cli.output import run_guarded
from programs import lifecycle

app.command("demo")(lifecycle.demo)
app.command("status")(lifecycle.status)
app.command("ui")(lifecycle.ui)


def main() -> None:
    run_guarded(app)
