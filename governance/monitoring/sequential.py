"""Anytime-valid evidence that one group's approval rate lies outside bounds relative to another's.

Each group's approvals are Bernoulli draws. For a rate p, Robbins' beta-binomial
mixture M(p) = B(a + s, b + n - s) / B(a, b) / (p^s (1 - p)^(n - s)) is a
nonnegative martingale with mean 1 when p is the true rate, so by Ville's
inequality it ever reaches 1/alpha with probability at most alpha, however
often it is looked at: {p : M(p) < 1/alpha} is a confidence sequence.

The null "the ratio p_g / p_r is at least `low`" holds for some (p_g, p_r) in
the region p_g >= low * p_r; the evidence against it is the smallest, over that
region, of max(M_g(p_g), M_r(p_r)). It reaches 1/alpha only if both confidence
sequences (each at alpha) exclude every null point together, so under the null
it ever does with probability at most 2 alpha. The minimum lies where the
region's boundary p_g = low * p_r meets the point at which the two mixtures are
equal (each is log-convex in its rate), found by bisection. The same holds for
"at most `high`" mirrored.

Reference: Howard, Ramdas, McAuliffe, Sekhon, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Ann. Statist. 49 (2021), section on
conjugate mixtures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_BISECTIONS = 60


@dataclass(frozen=True)
class Prior:
    """The mixing Beta(a, b): centred on a rate the approved card measured, weak (a + b = `strength`)."""

    a: float
    b: float

    @classmethod
    def centred(cls, rate: float, strength: float = 2.0) -> Prior:
        rate = min(max(rate, 0.01), 0.99)
        return cls(rate * strength, (1 - rate) * strength)


@dataclass
class Counts:
    """Decisions and approvals of one group, with the log of its mixture's normaliser kept current."""

    prior: Prior
    n: int = 0
    s: int = 0

    def add(self, decisions: int, approvals: int) -> None:
        self.n += decisions
        self.s += approvals

    @property
    def rate(self) -> float:
        return self.s / self.n if self.n else math.nan

    def log_mixture(self) -> float:
        a, b = self.prior.a, self.prior.b
        return _log_beta(a + self.s, b + self.n - self.s) - _log_beta(a, b)

    def log_evidence(self, p: float, log_mixture: float) -> float:
        """log M(p): how strongly the approvals so far speak against the rate being `p`."""
        return log_mixture - _log_likelihood(self.s, self.n, p)


def log_evidence_outside(group: Counts, reference: Counts, low: float, high: float) -> tuple[float, str | None]:
    """log of the evidence that group/reference rate lies below `low` or above `high`, and which side ("low",
    "high"; None while the rates as measured lie within the bounds, where the evidence is at most 1)."""
    if not group.n or not reference.n:
        return 0.0, None
    pg, pr = group.rate, reference.rate
    if pg < low * pr:
        return _boundary_minmax(group, reference, low), "low"
    if pg > high * pr:
        return _boundary_minmax(group, reference, high), "high"
    return 0.0, None


def _boundary_minmax(group: Counts, reference: Counts, ratio: float) -> float:
    """min over the null boundary p_g = ratio * p_r of max(log M_g, log M_r): between p_r = the reference's
    measured rate (where M_r is least) and p_r = the group's measured rate / ratio (where M_g is least), log M_g
    falls and log M_r rises, so their difference crosses zero once."""
    mg, mr = group.log_mixture(), reference.log_mixture()

    def gap(pr: float) -> float:
        return group.log_evidence(ratio * pr, mg) - reference.log_evidence(pr, mr)

    start, end = reference.rate, min(group.rate / ratio, 1.0)
    if gap(start) <= 0:  # M_g is already below M_r where M_r is least
        return max(0.0, reference.log_evidence(start, mr))
    if gap(end) >= 0:  # M_r is already below M_g where M_g is least
        return max(0.0, group.log_evidence(ratio * end, mg))
    for _ in range(_BISECTIONS):
        middle = (start + end) / 2
        if gap(middle) > 0:
            start = middle
        else:
            end = middle
    return max(0.0, reference.log_evidence((start + end) / 2, mr))


def _log_likelihood(s: int, n: int, p: float) -> float:
    if (s and p <= 0.0) or (n - s and p >= 1.0):
        return -math.inf
    return (s * math.log(p) if s else 0.0) + ((n - s) * math.log1p(-p) if n - s else 0.0)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
