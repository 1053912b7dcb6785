"""Why a run failed, for people: each failed step with its error's own message, and each failed blocking asset
check with its description, read from the run's events (`govern train` prints them, `govern status` shows them).

The step's innermost error is the one a user can act on (`DataError: clients.csv: data file not found`); the
Dagster wrapper around it and every traceback stay in Dagster's event log.
"""

from __future__ import annotations

import re

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

_EVENTS = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_CHECK_EVALUATION}
_QUALIFIED = re.compile(r"^[\w.]+\.(\w+): ")  # `package.module.Class: message`


def run_failures(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """One line per failed step (`step: message`) and per failed blocking check (`check asset/name: why`)."""
    steps, checks = [], []
    for record in instance.get_records_for_run(run_id, of_type=_EVENTS, limit=1000).records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_key:
            steps.append(f"{event.step_key.replace('__', '/')}: {error_message(data.error)}")
        elif isinstance(data, dg.AssetCheckEvaluation) and not data.passed and data.blocking:
            checks.append(f"check {data.asset_key.to_user_string()}/{data.check_name}: {data.description}")
    return steps + checks


def error_message(error: SerializableErrorInfo | None) -> str:
    """The innermost cause's message on one line: its class name kept (not its module) unless it is Dagster's."""
    if error is None:
        return "failed (no error recorded)"
    while error.cause is not None:
        error = error.cause
    text = " ".join(line.strip() for line in error.message.strip().splitlines())
    if error.cls_name.startswith("Dagster"):
        return text.split(": ", 1)[-1]
    return _QUALIFIED.sub(r"\1: ", text)
