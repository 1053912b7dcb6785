"""The monitoring report of an alert: the window's judgement with every figure, and Evidently's HTML.

Written into a new directory per report; `report.json` is canonical JSON. Its
SHA-256 and path are ledgered with the run that wrote it, and the remediation
of that run finds it through the ledger (`run_report`) and re-checks the
digest before anything acts on the figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from governance.config import GovernedModel
from governance.digests import canonical_json, file_sha256
from governance.errors import GovernanceError
from governance.events import MonitoringAlert, WindowJudged
from governance.ledger import Ledger
from governance.monitoring.monitor import CONCERNS, Monitor
from governance.monitoring.policy import Judgement
from governance.monitoring.windows import Window
from governance.objectstore import fetched
from governance.settings import Settings

_RECENT = 200  # ledger entries of the model searched for a run's report (it was written moments before)
REPORT_FILE, DRIFT_HTML = "report.json", "data_drift.html"


@dataclass(frozen=True)
class MonitoringReport:
    judgement: Judgement
    path: Path
    sha256: str
    html_path: Path | None
    html_sha256: str | None


def write_report(
    monitor: Monitor, model: GovernedModel, window: Window, stream: str, directory: Path, context: dict
) -> MonitoringReport:
    """Judge every concern of the window's stream in full, and write the report (and the HTML) into `directory`."""
    concerns = tuple(name for name, of in CONCERNS.items() if of == stream)
    judgement, snapshot = monitor.judge(model, window, stream, concerns, full_report=True)
    directory.mkdir(parents=True, exist_ok=True)
    html = None
    if snapshot is not None:
        html = directory / DRIFT_HTML
        snapshot.save_html(str(html))
    path = directory / REPORT_FILE
    path.write_bytes(
        canonical_json(
            {**judgement.to_dict(), "first_seq": window.first_seq, "last_seq": window.last_seq, "context": context}
        )
    )
    return MonitoringReport(judgement, path, file_sha256(path), html, file_sha256(html) if html else None)


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
