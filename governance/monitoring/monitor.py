"""Judging windows of live decisions: what a sensor tick runs, and what reports and remediation rely on.

Two streams of windows per model:
- live: every complete window, judged for data drift, score drift, decision-rate drift and fairness;
- labelled: the same windows again once outcomes have arrived, judged for
  equal opportunity and performance.

`scan` walks a sensor's streams from its cursor and judges every complete
window it can, up to a bound per tick. A window that cannot be judged now
(the decision log unavailable, a reference that cannot be built) stops the
stream where it is, with a note, and is judged on a later tick; a window that
will never be judgeable (all of it in the safe state, fewer decisions than
`min_window_size`, labels that never arrived while later ones did) is passed
over with a note. Notes are the sensor tick's message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from governance import training
from governance.config import GovernedModel
from governance.decisions import DecisionLog
from governance.digests import digest_of, sha256_hex
from governance.errors import GovernanceError, brief
from governance.monitoring.decision_rates import decision_rate_drift
from governance.monitoring.drift import data_drift, score_drift
from governance.monitoring.fairness import equal_opportunity, live_fairness
from governance.monitoring.figures import Measurement
from governance.monitoring.performance import performance
from governance.monitoring.policy import Judgement, judge
from governance.monitoring.reference import References
from governance.monitoring.windows import LABELLED, LIVE, Cursor, Observed, Window, next_window, observe, pending
from governance.policy.bundle import SCHEMA_FILE, PolicyBundle
from governance.release.services import Services
from governance.serving.decide import APPROVE
from governance.settings import Settings

CONCERNS = {
    "data_drift": LIVE,
    "score_drift": LIVE,
    "decision_rate_drift": LIVE,
    "fairness": LIVE,
    "equal_opportunity": LABELLED,
    "performance": LABELLED,
}
MAX_WINDOWS_PER_TICK = 10


@dataclass(frozen=True)
class Scan:
    """What one sensor tick judged, what it noted, and where its cursor is now."""

    judgements: tuple[Judgement, ...]
    notes: tuple[str, ...]
    cursor: Cursor

    def message(self) -> str:
        return "; ".join([j.summary() for j in self.judgements] + list(self.notes))


class Monitor:
    """The stores, the policies in force and the references a model's windows are judged with."""

    def __init__(self, settings: Settings, record: bool = True) -> None:
        self.settings = settings
        self.services = Services(settings)
        self.references = References(self.services, record=record)
        self._log: DecisionLog | None = None
        self._bundle: tuple[str, PolicyBundle] | None = None

    @property
    def log(self) -> DecisionLog:
        """Opened on first use, so an unavailable decision log fails the tick that needs it, not the process."""
        if self._log is None:
            self._log = DecisionLog.for_settings(self.settings)
        return self._log

    def policies(self) -> PolicyBundle:
        """The bundle in force: loaded again whenever any policy file's bytes change."""
        directory = self.settings.policies_dir
        files = sorted([directory / SCHEMA_FILE, *directory.glob("*.cedar")])
        fingerprint = digest_of({p.name: sha256_hex(p.read_bytes()) for p in files if p.is_file()})
        if self._bundle is None or self._bundle[0] != fingerprint:
            self._bundle = (fingerprint, PolicyBundle.load(directory))
        return self._bundle[1]

    def judge(
        self,
        model: GovernedModel,
        window: Window,
        stream: str,
        concerns: tuple[str, ...],
        as_version: int | None = None,
        full_report: bool = False,
    ):
        """Measure `concerns` on the window and ask the policy; returns (Judgement, Evidently snapshot or None).

        `as_version` re-scores the window's decisions with another approved version (a rollback target)
        and judges that version against its own reference. `full_report` runs Evidently's whole
        DataDriftPreset (for the HTML report) instead of the drift share alone.
        """
        entries = window.labelled() if stream == LABELLED else window.judged()
        version = as_version or window.version
        if version is None:
            raise GovernanceError(f"window {window.key} of {model.name}: no scored decision, so no version to judge")
        sample = _Sample(model, observe(self.log, window, entries))
        if as_version is not None:
            sample = sample.rescored(self.references.pipeline(model, as_version))
        measurements, snapshot = [], None
        for concern in concerns:
            measurement, extra = self._measure(concern, model, version, sample, full_report)
            measurements.append(measurement)
            snapshot = snapshot or extra
        judgement = judge(
            self.policies(),
            model=model.name,
            version=version,
            risk_tier=model.risk_tier,
            window=window.key,
            stream=stream,
            decisions=len(entries),
            measurements=measurements,
        )
        return judgement, snapshot

    def _measure(self, concern: str, model: GovernedModel, version: int, sample: _Sample, full_report: bool):
        if concern == "data_drift":
            return data_drift(model, self.references.get(model, version), sample.features, full_report)
        if concern == "score_drift":
            return score_drift(self.references.get(model, version), sample.scores), None
        if concern == "decision_rate_drift":
            return decision_rate_drift(model, self.references.get(model, version).scores, sample.scores), None
        if concern == "performance":
            reference = self.references.get(model, version)
            return performance(
                reference.card,
                reference.card_problem,
                sample.unfavourable(),
                sample.scores,
                model.evaluation.confidence,
            ), None
        unmeasured = _protected_problem(model, sample)
        if unmeasured:
            return Measurement(concern, {}, f"{concern.replace('_', ' ')} not judged: {unmeasured}"), None
        rows = sample.with_protected
        if concern == "fairness":
            return live_fairness(model, sample.protected, sample.approved[rows]), None
        if concern == "equal_opportunity":
            favourable = ~sample.unfavourable()[rows].astype(bool)
            return equal_opportunity(model, sample.protected, sample.approved[rows], favourable), None
        raise GovernanceError(f"unknown monitoring concern {concern!r} (known: {', '.join(CONCERNS)})")


@lru_cache(maxsize=8)
def monitor_for(settings: Settings, record: bool = True) -> Monitor:
    """One Monitor per state dir and process, so references stay loaded between sensor ticks. A sensor's
    (`record=False`) writes nothing: a reference it needs is built in memory, and recorded by the run."""
    return Monitor(settings, record)


class _Sample:
    """A window's judged decisions as arrays: scores, approvals, labels; features and protected attributes
    decoded from the log's JSON only when a measurement asks for them."""

    def __init__(self, model: GovernedModel, observed: list[Observed]) -> None:
        self.model, self.observed = model, observed
        self.scores = np.array([d.score for d in observed], dtype=float)
        self.approved = np.array([d.outcome == APPROVE for d in observed], dtype=bool)
        self.labels = np.array([np.nan if d.label is None else d.label for d in observed], dtype=float)

    @cached_property
    def features(self) -> pd.DataFrame:
        return pd.DataFrame([json.loads(d.features) for d in self.observed], columns=self.model.feature_columns)

    @cached_property
    def _protected(self) -> list[dict | None]:
        return [json.loads(d.protected) if d.protected is not None else None for d in self.observed]

    @cached_property
    def with_protected(self) -> np.ndarray:
        """Positions of the decisions that carry every protected attribute."""
        columns = self.model.protected_columns
        return np.array(
            [i for i, p in enumerate(self._protected) if p and all(p.get(c) is not None for c in columns)], dtype=int
        )

    @cached_property
    def protected(self) -> pd.DataFrame:
        return pd.DataFrame([self._protected[i] for i in self.with_protected], columns=self.model.protected_columns)

    def rescored(self, pipeline) -> _Sample:
        """The same applications decided by another version: its scores, and approvals by the same rule."""
        other = _Sample(self.model, self.observed)
        other.features = self.features  # decoded once for both
        other.scores = training.score(pipeline, self.model, self.features)
        other.approved = other.scores < self.model.decisioning.approve_below
        return other

    def unfavourable(self) -> np.ndarray:
        return (self.labels != self.model.favourable_outcome).astype(np.int8)


def _protected_problem(model: GovernedModel, sample: _Sample) -> str | None:
    if not model.monitoring.collect_protected_attributes:
        return "the model does not collect protected attributes (monitoring.collect_protected_attributes is off)"
    if len(sample.with_protected) < model.monitoring.min_window_size:
        return (
            f"only {len(sample.with_protected)} of {len(sample.scores)} decisions carry every protected attribute "
            f"(minimum {model.monitoring.min_window_size})"
        )
    return None


def scan(
    monitor: Monitor,
    model: GovernedModel,
    streams: dict[str, tuple[str, ...]],
    cursor: Cursor,
    max_windows: int = MAX_WINDOWS_PER_TICK,
) -> Scan:
    """Judge each stream's complete windows after the cursor, for that stream's concerns."""
    judgements: list[Judgement] = []
    notes: list[str] = []
    for stream, concerns in streams.items():
        cursor = _scan_stream(monitor, model, stream, concerns, cursor, max_windows, judgements, notes)
    return Scan(tuple(judgements), tuple(notes), cursor)


def _scan_stream(
    monitor: Monitor,
    model: GovernedModel,
    stream: str,
    concerns: tuple[str, ...],
    cursor: Cursor,
    max_windows: int,
    judgements: list,
    notes: list,
) -> Cursor:
    size = model.monitoring.window_size
    for _ in range(max_windows):
        after = cursor.positions[stream]
        try:
            window = next_window(monitor.log, model.name, after, size)
            if window is None:
                notes.append(
                    f"{stream}: {pending(monitor.log, model.name, after, size)} of {size} decisions since "
                    f"seq {after}, window not complete"
                )
                return cursor
            judgement, note, wait = _judge_or_pass(monitor, model, window, stream, concerns)
        except (GovernanceError, SQLAlchemyError, OSError) as exc:
            notes.append(f"{stream} window after seq {after} not judged now (tried again next tick): {brief(exc)}")
            return cursor
        if wait:
            notes.append(f"{stream} window {window.key}: {note}")
            return cursor
        if judgement is None:
            notes.append(f"{stream} window {window.key} passed over: {note}")
        else:
            judgements.append(judgement)
        cursor = cursor.moved(stream, window.last_seq)
    notes.append(f"{stream}: more complete windows wait for the next tick")
    return cursor


def _judge_or_pass(
    monitor: Monitor, model: GovernedModel, window: Window, stream: str, concerns: tuple[str, ...]
) -> tuple[Judgement | None, str, bool]:
    """The window's judgement; or why it is passed over for good; or why to wait for it (labels may still come)."""
    minimum = model.monitoring.min_window_size
    if window.version is None:
        return None, "no decision in it was scored (safe state: kill switch on or no servable champion)", False
    judged = window.judged()
    if len(judged) < minimum:
        return (
            None,
            (
                f"only {len(judged)} decisions scored by v{window.version} with their inputs kept "
                f"(minimum {minimum}), too few to judge"
            ),
            False,
        )
    if stream == LABELLED and len(window.labelled()) < minimum:
        later = next_window(monitor.log, model.name, window.last_seq, model.monitoring.window_size)
        arrived = f"{len(window.labelled())} of {len(judged)} decisions labelled (minimum {minimum})"
        if later is not None and len(later.labelled()) >= minimum:
            return None, f"{arrived}, and later decisions are labelled: these labels never arrived", False
        return None, f"waiting for outcomes: {arrived}", True
    judgement, _ = monitor.judge(model, window, stream, concerns)
    return judgement, "", False
