"""Anytime-valid evidence that one group's approval rate lies outside bounds relative to another's.

Each group's approvals are Bernoulli draws. For a rate p, Robbins' beta-binomial
mixture M(p) = B(a + s, b + n - s) / B(a, b) / (p^s (1 - p)^(n - s)) is a
nonnegative martingale with mean 1 when p is the true rate. Decisions of the
group and of its reference arrive one at a time and each moves one of the two
mixtures, so their product at the true pair of rates is a test martingale too,
and by Ville's inequality it ever reaches 1/alpha with probability at most
alpha, however often it is looked at.

The null "the ratio p_g / p_r is at least `low`" holds at some pair (p_g, p_r)
with p_g >= low * p_r; the evidence against it is the smallest product over
that region: below the true pair's, so it too reaches 1/alpha with probability
at most alpha under the null. As the log of the product is convex in the pair
and the rates measured lie outside the region, the smallest is on its boundary
p_g = low * p_r, at the root of a quadratic (the constrained maximum
likelihood). The same holds for "at most `high`" mirrored.

References: Howard, Ramdas, McAuliffe, Sekhon, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Ann. Statist. 49 (2021), on conjugate
mixtures; Ramdas, Grunwald, Vovk, Shafer, "Game-theoretic statistics and safe
anytime-valid inference", Statist. Sci. 38 (2023), on test martingales.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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
    "high"; None while the rates as measured lie within the bounds, where there is none)."""
    if not group.n or not reference.n:
        return 0.0, None
    if group.rate < low * reference.rate:
        return _on_boundary(group, reference, low), "low"
    if group.rate > high * reference.rate:
        return _on_boundary(group, reference, high), "high"
    return 0.0, None


def _on_boundary(group: Counts, reference: Counts, ratio: float) -> float:
    """min over p_g = ratio * p_r of log M_g(p_g) + log M_r(p_r). Its derivative in p_r vanishes where
    ratio * N * p^2 - (S * (1 + ratio) + ratio * A + B) * p + S = 0 (N decisions, S approvals, A and B the
    group's and the reference's others); the smaller root is the minimum."""
    approvals, others_g, others_r = group.s + reference.s, group.n - group.s, reference.n - reference.s
    total = group.n + reference.n
    b = approvals * (1 + ratio) + ratio * others_g + others_r
    root = (b - math.sqrt(max(b * b - 4 * ratio * total * approvals, 0.0))) / (2 * ratio * total)
    pr = min(max(root, 0.0), min(1.0, 1.0 / ratio))
    log_e = group.log_evidence(ratio * pr, group.log_mixture()) + reference.log_evidence(pr, reference.log_mixture())
    return max(0.0, log_e)


def _log_likelihood(s: int, n: int, p: float) -> float:
    if (s and p <= 0.0) or (n - s and p >= 1.0):
        return -math.inf
    return (s * math.log(p) if s else 0.0) + ((n - s) * math.log1p(-p) if n - s else 0.0)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
