"""`govern train MODEL`: a signed candidate, run headless on the Dagster instance the UI shows.

The command signs nothing itself and imports no Dagster: it finds the requester's key, then runs the
program `programs.train` (same interpreter, same state dir and config), which signs the request, allocates the
next version's partition, runs the candidate with progress lines and prints the gate's outcome.
"""

from __future__ import annotations

import os
import subprocess
import sys

import typer

from governance.cli.release import AsOption, KeyOption, ModelArg
from governance.settings import Settings
from governance.trust.keys import signing_key_path
from governance.trust.roster import Roster


def train(ctx: typer.Context, model: ModelArg, principal: AsOption, key: KeyOption = None) -> None:
    """Request (signed by you) and run the next candidate version of MODEL; print the gate's outcome."""
    settings: Settings = ctx.obj
    if key is None:
        Roster.load(settings.roster_path).principal(principal)  # an unknown name is named as such
    env = {
        **os.environ,
        "GOVERN_HOME": str(settings.home),
        "GOVERN_CONFIG": str(settings.config_path),
        "DAGSTER_HOME": str(settings.dagster_home),
    }
    key_file = key or signing_key_path(settings.keys_dir, principal)
    command = [sys.executable, "-m", "programs.train", model, "--as", principal, "--key", str(key_file)]
    raise typer.Exit(subprocess.run(command, env=env, check=False).returncode)
