"""The program behind `govern train MODEL`: one signed candidate, run headless on the state dir's own instance.

`govern train` starts it as `python -m programs.train` (the CLI imports no Dagster). It signs the requester's
request for the next version (refused: nothing is created), adds that version's dynamic partition to the
Dagster instance of the state dir (DAGSTER_HOME = <state dir>/dagster, the one `govern ui` shows), runs the
candidate job in this process on that instance (no daemon needed, and a running daemon changes nothing),
prints one line per step as the run goes, and ends with the gate's outcome, its reasons and the next command;
when the run failed, each failed step with its error and each failed blocking check with its description.
A config whose checks fail for the model (`govern config check`: its data file missing or unreadable) is
refused before anything is created.

Exit status: 0 when the version waits for approval, 1 when the gate denied it, the run failed or it was refused.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from definitions import build_definitions
from governance.config import ConfigError, data_file_problems, load_config
from governance.errors import GovernanceError
from governance.release.outcome import candidate_outcome, outcome_text
from governance.release.services import Services
from governance.settings import Settings, apply_offline_env
from governance.training import estimator_problem
from governance.trust.keys import load_private_key
from jobs import QUIET
from jobs.candidates import requested_candidate
from programs.failures import run_failures
from programs.instance import open_instance

_STEPS = {
    dg.DagsterEventType.STEP_START: "started",
    dg.DagsterEventType.STEP_SUCCESS: "done",
    dg.DagsterEventType.STEP_FAILURE: "FAILED",
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    apply_offline_env()
    settings = Settings.from_env()
    config = load_config(settings.config_path)
    model = config.model(args.model)
    if problems := data_file_problems(config, [model.name]) + [p for p in [estimator_problem(model)] if p]:
        raise ConfigError("\n".join(problems) + "\nnothing was requested or created", problems)
    services = Services(settings)
    say = _printer()
    with open_instance(settings) as instance:
        say(f"{model.name}: Dagster instance {settings.dagster_home} (the one `govern ui` shows)")
        defs = build_definitions(settings, config)
        run_id = str(uuid.uuid4())  # known before the run starts, so progress can follow it
        with _progress(instance, run_id, say):
            key, result = requested_candidate(
                defs,
                instance,
                services,
                model,
                (args.principal, load_private_key(args.key)),
                run_config=QUIET,
                run_id=run_id,
                announce=say,
            )
        failures = [] if result.success else run_failures(instance, run_id)
    say(f"{key}: run {run_id} {'succeeded' if result.success else 'FAILED'}")
    outcome = candidate_outcome(services, model.name, key)
    if failures and outcome["outcome"] == "no gate decision":
        outcome = {
            **outcome,
            "outcome": "run failed",
            "reasons": failures,
            "next": f"fix what failed, then `govern train {model.name} --as {args.principal}` again",
        }
    else:
        outcome["reasons"] += failures
    print(outcome_text(outcome), flush=True)
    return 0 if outcome["outcome"] == "pending approval" else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govern train", description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--as", dest="principal", required=True)
    parser.add_argument("--key", type=Path, required=True)
    return parser


def _printer() -> Callable[[str], None]:
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    return say


class _progress:
    """Print each step's start, success or failure from the instance's event log while the run goes."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, say: Callable[[str], None]) -> None:
        self.instance, self.run_id, self.say = instance, run_id, say
        self.stop = threading.Event()
        self.cursor: str | None = None
        self.thread = threading.Thread(target=self._watch, name="govern-train-progress", daemon=True)

    def __enter__(self) -> _progress:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._report()  # the last steps

    def _watch(self) -> None:
        while not self.stop.wait(0.5):
            self._report()

    def _report(self) -> None:
        records = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, of_type=set(_STEPS))
        self.cursor = records.cursor
        for record in records.records:
            event = record.event_log_entry.dagster_event
            if event is not None and event.step_key:
                self.say(f"  {event.step_key.replace('__', '/')}: {_STEPS[event.event_type]}")


def _exit(code: int) -> None:
    """Leave without tearing the heap down: every store was committed and closed by now, and freeing what a run
    imported (Dagster, MLflow, pandas, scikit-learn, Great Expectations) took 8-15 s after the last line was
    printed, in C code (`faulthandler` found no Python frame), all of it added to `govern train`'s time."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    # Dagster's notes on its preview and beta APIs the definitions use, printed on every run: not the user's concern.
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    try:
        status = main()
    except GovernanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    _exit(status)
