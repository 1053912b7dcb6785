"""Monitoring reports as recorded: found through the ledger and read back only while their digest matches.

Light on purpose (no numpy, no Evidently): `govern status` and the console read reports without loading
the monitoring stack that writes them (`governance.monitoring.report`).
"""

from __future__ import annotations

import json
from pathlib import Path

from governance.digests import file_sha256
from governance.errors import GovernanceError
from governance.events import MonitoringAlert, WindowJudged
from governance.ledger import Ledger
from governance.objectstore import fetched
from governance.settings import Settings

_RECENT = 200  # ledger entries of the model searched for a run's report (it was written moments before)
REPORT_FILE, DRIFT_HTML = "report.json", "data_drift.html"


def run_report(ledger: Ledger, settings: Settings, model: str, run_id: str) -> dict:
    """The judgement recorded by the report the run `run_id` wrote, checked against its ledgered digest."""
    # Unchecked: an altered entry elsewhere must not stop containment; the report itself is digest-checked.
    for judged in reversed(ledger.events(WindowJudged, model=model, limit=_RECENT, checked=False)):
        if judged.run_id == run_id:
            return load_report(fetched(settings, settings.resolve(judged.path)), judged.report)
    raise GovernanceError(f"no monitoring report of {model} was ledgered by run {run_id}")


def load_report(path: str | Path, sha256: str) -> dict:
    """A report's recorded judgement, only if the file is still the one that was written."""
    actual = file_sha256(path)
    if actual != sha256:
        raise GovernanceError(
            f"{path}: the monitoring report changed since it was written "
            f"(sha256 {actual[:12]}..., recorded {sha256[:12]}...)"
        )
    return json.loads(Path(path).read_bytes())


def drift_alerted_after(ledger: Ledger, settings: Settings, model: str, after_seq: int) -> list[dict]:
    """Windows of `model` alerted after ledger entry `after_seq` whose report calls for retraining (drift):
    {"seq", "at", "version", "window", "rules"}; an alert whose report cannot be read is listed with its problem."""
    found = []
    for alerted in ledger.events(MonitoringAlert, model=model, since_seq=after_seq):
        alert = {"seq": alerted.seq, "at": alerted.ts, "version": alerted.version, "window": alerted.window}
        try:
            retrain = load_report(fetched(settings, settings.resolve(alerted.path)), alerted.report)["retrain"]
        except (GovernanceError, OSError, KeyError, ValueError) as exc:
            found.append({**alert, "problem": f"its report cannot be read: {exc}"})
            continue
        if retrain["allowed"]:
            found.append({**alert, "rules": [f["rule"] for f in retrain["findings"]]})
    return found


def drift_since_trained(ledger: Ledger, settings: Settings, model: str, version: str) -> list[dict]:
    """Drift alerted after the version's first ledger entry (its registration): none of it is in its evidence,
    which an approver of the version should know (`drift_alerted_after`'s records)."""
    own = ledger.entries(model=model, version=version, checked=False)
    return drift_alerted_after(ledger, settings, model, own[0].seq) if own else []


def predates_drift_text(drift: dict) -> str:
    """One line for an approver: a drift alerted since the version was trained."""
    why = drift.get("problem") or ", ".join(drift["rules"])
    return (
        f"PREDATES DRIFT alerted at {drift['at']} on {drift['version']} window {drift['window']} ({why}): "
        "its evidence does not reflect it"
    )
