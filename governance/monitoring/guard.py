"""The fairness guard: judging harm decision by decision, while a monitoring window fills.

Armed for one version from the fairness report sealed in the evidence pack it
was approved with: for each protected attribute, its reference group and the
groups the card measured (at least `evaluation.min_group_size` of each outcome,
as the card judged them). Bounds on disparate impact come from the policy's
own window rule (`monitoring.disparate_impact`, at the model's risk tier), so
the guard judges the same harm the window report does, only sooner.

A test follows an unbroken run of the version's scored decisions: each group's
approvals feed a beta-binomial mixture (`governance.monitoring.sequential`,
centred on the card's rate), and the test's evidence is the strongest, over
every group and its reference, that their ratio lies outside the bounds,
divided by the number of such comparisons. A new test starts
every half window (`RESTARTS_PER_WINDOW`), so harm that begins in the middle of
one is judged from near its start; each lasts a window, and the evidence is
divided by the restarts too. By Ville's inequality and the union bound, on
healthy traffic the evidence ever reaches 1/alpha in at most alpha of the
windows: the policy's threshold (`monitoring.fairness_guard`) is that 1/alpha.
A safe-state decision (kill switch on, nothing served) ends every test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from governance.config import GovernedModel
from governance.errors import GovernanceError
from governance.monitoring.sequential import Counts, Prior, log_evidence_outside
from governance.policy.bundle import PolicyBundle

RESTARTS_PER_WINDOW = 2
_LOG_MAX_EVIDENCE = math.log(1e9)  # far beyond any threshold; what Cedar's decimals hold comfortably
WINDOW_RULE = "monitoring.disparate_impact"
_BOUNDS = {"di_ci_high_min": "<", "di_ci_low_max": ">"}  # attribute -> how the window rule reads it


class GuardNotArmed(GovernanceError):
    """The guard cannot judge a version: its approved card's figures (or the policy's bounds) are missing or
    unusable. The message names the file or rule and what is wrong."""


@dataclass(frozen=True)
class Armed:
    """What a version's decisions are judged against."""

    model: str
    version: int
    risk_tier: str
    card: str  # SHA-256 of the sealed fairness report
    references: dict[str, str]  # attribute -> its reference group
    card_rates: dict[str, dict[str, float]]  # attribute -> group -> approval rate on the card (reference included)
    low: float
    high: float
    window_size: int

    @property
    def comparisons(self) -> int:
        """Groups compared with their attribute's reference group: each could raise the alarm."""
        return sum(len(groups) - 1 for groups in self.card_rates.values())


def arm(bundle: PolicyBundle, model: GovernedModel, version: int, report: dict, card: str, source: str) -> Armed:
    """Armed from a sealed fairness report (`source` names it in messages); GuardNotArmed if it cannot be."""
    low, high = _bounds(bundle, model.risk_tier)
    attributes = report.get("attributes") if isinstance(report, dict) else None
    if not isinstance(attributes, dict):
        raise GuardNotArmed(f"{source}: no 'attributes' object, so no approved approval rates to judge against")
    references: dict[str, str] = {}
    rates: dict[str, dict[str, float]] = {}
    for attribute in model.protected_attributes:
        name = attribute.label
        entry = attributes.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("groups"), dict):
            raise GuardNotArmed(f"{source}: attributes.{name}: missing, or without 'groups'")
        reference = entry.get("reference_group")
        groups = {g: _rate(source, name, g, e) for g, e in entry["groups"].items() if not _small(source, name, g, e)}
        if reference not in groups:
            raise GuardNotArmed(
                f"{source}: attributes.{name}.reference_group {reference!r} is not among its measured groups "
                f"({', '.join(groups) or 'none'})"
            )
        if len(groups) > 1:
            references[name], rates[name] = str(reference), groups
    if not rates:
        raise GuardNotArmed(f"{source}: no protected attribute has a measured group beside its reference group")
    return Armed(model.name, version, model.risk_tier, card, references, rates, low, high, model.monitoring.window_size)


def _bounds(bundle: PolicyBundle, tier: str) -> tuple[float, float]:
    """Disparate impact's lower and upper bound at `tier`, read from the window rule's thresholds."""
    rule = bundle.rules.get(WINDOW_RULE)
    found = {
        c.attribute: float(c.threshold)
        for c in (rule.checks if rule else ())
        if c.attribute in _BOUNDS and c.denies_when == _BOUNDS[c.attribute] and c.applies_to(tier)
        if c.threshold is not None
    }
    if set(found) != set(_BOUNDS) or not 0 < found["di_ci_high_min"] < 1 < found["di_ci_low_max"]:
        raise GuardNotArmed(
            f"policies in {bundle.directory}: rule {WINDOW_RULE} gives no disparate-impact bounds at risk tier "
            f"{tier!r} (expected di_ci_high_min < L with 0 < L < 1 and di_ci_low_max > H with H > 1)"
        )
    return found["di_ci_high_min"], found["di_ci_low_max"]


def _small(source: str, attribute: str, group: str, entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("small_group"), bool):
        raise GuardNotArmed(f"{source}: attributes.{attribute}.groups.{group}.small_group: missing or not true/false")
    return entry["small_group"]


def _rate(source: str, attribute: str, group: str, entry: dict) -> float:
    rate = entry.get("selection_rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1 or math.isnan(rate):
        raise GuardNotArmed(
            f"{source}: attributes.{attribute}.groups.{group}.selection_rate is {rate!r}, not a rate in [0, 1]"
        )
    return float(rate)


@dataclass(frozen=True)
class Observation:
    """One decision as the guard reads it: scored by `version` (None: the safe state), approved or not, and its
    group under each protected attribute (None when not sent)."""

    seq: int
    version: int | None
    approved: bool
    groups: dict[str, str | None]


@dataclass(frozen=True)
class Finding:
    """How strongly a test's decisions say some group's disparate impact lies outside the bounds."""

    model: str
    version: int
    first_seq: int
    last_seq: int
    decisions: int
    evidence: float  # adjusted: at least 1/alpha on healthy traffic with probability at most alpha per window
    strongest: dict  # {"attribute", "group", "reference", "side", "group_rate", "reference_rate", ...}
    groups: dict  # attribute -> group -> {"decisions", "approved", "rate", "card_rate"}
    card: str

    @property
    def window(self) -> str:
        return f"{self.first_seq}-{self.last_seq}"

    def summary(self) -> str:
        s = self.strongest
        return (
            f"{self.model}-v{self.version} decisions {self.window} ({self.decisions} judged as they were logged): "
            f"{s['attribute']} {s['group']!r} approved at {s['group_rate']:.3f} against {s['reference']!r} at "
            f"{s['reference_rate']:.3f} (disparate impact {s['side']} the bound {s['bound']}); "
            f"anytime-valid evidence {self.evidence:.3g}"
        )

    def to_dict(self) -> dict:
        return {
            "window": self.window,
            "decisions": self.decisions,
            "evidence": self.evidence,
            "strongest": self.strongest,
            "groups": self.groups,
            "restarts_per_window": RESTARTS_PER_WINDOW,
        }


@dataclass
class _Test:
    armed: Armed
    first_seq: int
    last_seq: int = 0
    decisions: int = 0
    counts: dict[str, dict[str, Counts]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = {
            name: {g: Counts(Prior.centred(rate)) for g, rate in groups.items()}
            for name, groups in self.armed.card_rates.items()
        }

    def add(self, last_seq: int, decisions: int, tally: dict[tuple[str, str], list[int]]) -> None:
        """Add a run of decisions ending at `last_seq`: (attribute, group) -> [decisions, approvals]."""
        self.last_seq, self.decisions = last_seq, self.decisions + decisions
        for (name, group), (n, s) in tally.items():
            counts = self.counts.get(name, {}).get(group)
            if counts is not None:
                counts.add(n, s)

    def strongest(self) -> tuple[float, tuple[str, str, str, Counts, Counts] | None]:
        """The test's adjusted evidence, and the comparison it comes from (None while none lies outside)."""
        armed = self.armed
        best: tuple[float, tuple[str, str, str, Counts, Counts] | None] = (0.0, None)
        for name, groups in self.counts.items():
            reference = groups[armed.references[name]]
            for group, counts in groups.items():
                log_e, side = log_evidence_outside(counts, reference, armed.low, armed.high)
                if side and log_e > best[0]:
                    best = (log_e, (name, group, side, counts, reference))
        log_e, strongest = best
        adjust = math.log(armed.comparisons * RESTARTS_PER_WINDOW)
        return math.exp(min(log_e - adjust, _LOG_MAX_EVIDENCE)), strongest

    def finding(self, evidence: float, strongest: tuple[str, str, str, Counts, Counts] | None) -> Finding:
        armed = self.armed
        return Finding(
            armed.model,
            armed.version,
            self.first_seq,
            self.last_seq,
            self.decisions,
            evidence,
            self._describe(strongest),
            self._groups(),
            armed.card,
        )

    def _describe(self, strongest) -> dict:
        if strongest is None:
            return {"attribute": None, "group": None, "reference": None, "side": "within", "bound": None,
                    "group_rate": math.nan, "reference_rate": math.nan}  # fmt: skip
        name, group, side, counts, reference = strongest
        return {
            "attribute": name,
            "group": group,
            "reference": self.armed.references[name],
            "side": "below" if side == "low" else "above",
            "bound": self.armed.low if side == "low" else self.armed.high,
            "group_rate": counts.rate,
            "reference_rate": reference.rate,
        }

    def _groups(self) -> dict:
        return {
            name: {
                g: {"decisions": c.n, "approved": c.s, "card_rate": self.armed.card_rates[name][g]}
                for g, c in groups.items()
            }
            for name, groups in self.counts.items()
        }


class FairnessGuard:
    """The live tests of one armed version: fed decisions in log order, gives the strongest finding."""

    def __init__(self, armed: Armed) -> None:
        self.armed = armed
        self.tests: list[_Test] = []
        self._since_start = 0

    def observe(self, decisions: list[Observation]) -> Finding | None:
        """Feed decisions (log order); the strongest finding of a live test after them, if any has evidence.

        Decisions are counted once per run in which no test starts or ends, and the run's counts added to every
        live test (instead of each decision to each test), and only the strongest test's finding is built: the
        same counts, so the same findings. With the watch's query built once (`guard_watch._read`), guard CPU
        per decision on 15,000 decisions from serving's decision path, old and new code interleaved in one run:
        147 -> 55 us at 8 decisions a poll, 36 -> 14 us at 75; an idle poll 0.80 -> 0.18 ms."""
        i = 0
        while i < len(decisions):
            if decisions[i].version != self.armed.version:  # the safe state, or another version: every test ends
                self.reset()
                i += 1
                continue
            run = decisions[i : i + self._run_length(decisions[i].seq)]
            run = run[: next((k for k, seen in enumerate(run) if seen.version != self.armed.version), len(run))]
            tally = _tally(run)
            for test in self.tests:
                test.add(run[-1].seq, len(run), tally)
            self._since_start += len(run)
            self.tests = [t for t in self.tests if t.decisions < self.armed.window_size]
            i += len(run)
        judged = [(test, *test.strongest()) for test in self.tests]
        if not judged:
            return None
        test, evidence, strongest = max(judged, key=lambda j: j[1])
        return test.finding(evidence, strongest)  # only the strongest test's finding is built

    def reset(self) -> None:
        """End every live test (the safe state, or a finding acted on): the next decision starts afresh."""
        self.tests, self._since_start = [], 0

    def _run_length(self, seq: int) -> int:
        """Start a test at `seq` if one is due; how many decisions from it on no test starts or ends."""
        every = self.armed.window_size // RESTARTS_PER_WINDOW
        if not self.tests or self._since_start >= every:
            self.tests.append(_Test(self.armed, seq))
            self._since_start = 0
        return max(1, min(every - self._since_start, *(self.armed.window_size - t.decisions for t in self.tests)))


def _tally(run: list[Observation]) -> dict[tuple[str, str], list[int]]:
    """(attribute, group) -> [decisions, approvals] of a run; a decision without a group joins none."""
    tally: dict[tuple[str, str], list[int]] = {}
    for seen in run:
        for name, group in seen.groups.items():
            counts = tally.setdefault((name, group or ""), [0, 0])
            counts[0] += 1
            counts[1] += seen.approved
    return tally
