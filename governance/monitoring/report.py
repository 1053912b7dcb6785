"""The monitoring report of an alert: the window's judgement with every figure, and Evidently's HTML.

Written into a new directory per report; `report.json` is canonical JSON. Its
SHA-256 and path are ledgered with the run that wrote it, and the remediation
of that run finds it through the ledger (`governance.monitoring.recorded`) and
re-checks the digest before anything acts on the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from governance.config import GovernedModel
from governance.digests import canonical_json, file_sha256
from governance.monitoring.monitor import CONCERNS, Monitor
from governance.monitoring.policy import Judgement
from governance.monitoring.recorded import DRIFT_HTML, REPORT_FILE
from governance.monitoring.windows import Window


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
