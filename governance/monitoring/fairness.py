"""Fairness of a window's live decisions by protected group, judged on confidence intervals.

A decision selects an applicant when it approves them automatically (outcome
"approve", as the release gate's fairness report counts selection). Per
protected attribute (groups as `governance.metrics.fairness.protected_groups`
forms them) this gives each group's selection rate, the demographic parity
difference (largest minus smallest rate) and each group's disparate impact: its
rate over the reference group's (configured, else the largest group), with a
Katz log interval. A window without the configured reference group judges
nothing on that attribute and says so: comparing with another group instead
would judge the window against a baseline nobody approved. As at the release gate, a group is judged on its whole interval,
so a window of a few hundred decisions does not raise alarms on noise; and as
every group compared in a window could raise the alarm, the intervals are
Bonferroni-adjusted for the number of comparisons (at `evaluation.confidence`
for the window as a whole). Groups with fewer than `evaluation.min_group_size`
decisions (or whose reference group has fewer) are reported, not judged.

Once outcomes are known, equal opportunity compares the selection rates among
applicants whose real outcome was the favourable one; the policy reads the
lower confidence bound of the largest gap to the reference group.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from governance.config import GovernedModel
from governance.metrics.fairness import protected_groups
from governance.monitoring.figures import Measurement


def live_fairness(model: GovernedModel, protected: pd.DataFrame, approved: np.ndarray) -> Measurement:
    """Selection rate, parity and disparate impact per group of every protected attribute."""
    tables = {name: _counts(values, approved) for name, values in _groups(model, protected).items()}
    judged = _judged_pairs(model, tables)
    z = _z(model.evaluation.confidence, len(judged))
    highs, lows, gaps, by_attribute = [], [], [], {}
    for name, table in tables.items():
        reference = _reference(model, name, table)
        groups = {}
        for group, row in table.iterrows():
            entry: dict[str, Any] = {
                "rows": int(row["rows"]),
                "approved": int(row["selected"]),
                "selection_rate": float(row["rate"]),
                "judged": (name, group) in judged,
            }
            if reference is not None and group != reference:
                point, low, high = _ratio_interval(row, table.loc[reference], z)
                entry.update(disparate_impact=point, disparate_impact_ci=[low, high])
                if entry["judged"]:
                    highs.append(high)
                    lows.append(low)
            groups[str(group)] = entry
        rates = [table.loc[g, "rate"] for n, g in judged if n == name]
        if rates:
            rates.append(table.loc[reference, "rate"])
            gaps.append(float(max(rates) - min(rates)))
        by_attribute[name] = _attribute_entry(model, name, reference, groups)
    details = {
        "decisions": int(len(approved)),
        "confidence": model.evaluation.confidence,
        "comparisons": len(judged),
        "min_group_size": model.evaluation.min_group_size,
        "attributes": by_attribute,
    }
    if not highs:
        return Measurement(
            "fairness",
            {},
            f"fairness not judged: no protected group has "
            f"{model.evaluation.min_group_size} decisions beside its reference group"
            f"{_absent_references(by_attribute)}",
            details,
        )
    attributes = {"di_ci_high_min": min(highs), "di_ci_low_max": max(lows), "parity_difference_max": max(gaps)}
    summary = (
        f"disparate impact intervals reach from {min(highs):.2f} (lowest upper bound) to "
        f"{max(lows):.2f} (highest lower bound); parity gap {max(gaps):.2f}{_absent_references(by_attribute)}"
    )
    return Measurement("fairness", attributes, summary, details)


def equal_opportunity(
    model: GovernedModel, protected: pd.DataFrame, approved: np.ndarray, favourable: np.ndarray
) -> Measurement:
    """Selection rates among applicants with the favourable real outcome, and the gaps to the reference group."""
    good = favourable.astype(bool)
    if not good.any():
        return Measurement(
            "equal_opportunity",
            {},
            f"equal opportunity not judged: no favourable outcome among the window's {len(good)} labelled decisions",
            {"favourable_outcomes": 0},
        )
    groups_of = _groups(model, protected[good].reset_index(drop=True))
    tables = {name: _counts(values, approved[good]) for name, values in groups_of.items()}
    judged = _judged_pairs(model, tables)
    z = _z(model.evaluation.confidence, len(judged))
    bounds, by_attribute = [], {}
    for name, table in tables.items():
        reference = _reference(model, name, table)
        groups = {}
        for group, row in table.iterrows():
            entry: dict[str, Any] = {"rows": int(row["rows"]), "selection_rate": float(row["rate"])}
            if reference is not None and group != reference:
                ref = table.loc[reference]
                gap = float(row["rate"] - ref["rate"])
                se = math.sqrt(
                    row["rate"] * (1 - row["rate"]) / row["rows"] + ref["rate"] * (1 - ref["rate"]) / ref["rows"]
                )
                entry.update(gap=gap, gap_ci=[gap - z * se, gap + z * se], judged=(name, group) in judged)
                if entry["judged"]:
                    bounds.append(max(0.0, abs(gap) - z * se))
            groups[str(group)] = entry
        by_attribute[name] = _attribute_entry(model, name, reference, groups)
    details = {
        "favourable_outcomes": int(good.sum()),
        "confidence": model.evaluation.confidence,
        "comparisons": len(judged),
        "attributes": by_attribute,
    }
    if not bounds:
        return Measurement(
            "equal_opportunity",
            {},
            "equal opportunity not judged: too few favourable outcomes "
            f"per group (need {model.evaluation.min_group_size}){_absent_references(by_attribute)}",
            details,
        )
    return Measurement(
        "equal_opportunity",
        {"equal_opportunity_ci_low_max": max(bounds)},
        f"largest equal-opportunity gap at least {max(bounds):.3f} (lower bound){_absent_references(by_attribute)}",
        details,
    )


def _groups(model: GovernedModel, protected: pd.DataFrame) -> dict[str, pd.Series]:
    groups = protected_groups(model, protected)
    return {a.label: groups[a.label] for a in model.protected_attributes}


def _judged_pairs(model: GovernedModel, tables: dict[str, pd.DataFrame]) -> set[tuple[str, str]]:
    """(attribute, group) compared with its reference group: both with at least min_group_size rows."""
    minimum = model.evaluation.min_group_size
    pairs = set()
    for name, table in tables.items():
        reference = _reference(model, name, table)
        if reference is not None and table.loc[reference, "rows"] >= minimum:
            pairs |= {(name, g) for g in table.index if g != reference and table.loc[g, "rows"] >= minimum}
    return pairs


def _counts(values: pd.Series, selected: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame({"group": values.to_numpy(), "selected": selected.astype(int)}).groupby("group")["selected"]
    counts = pd.DataFrame({"rows": table.size(), "selected": table.sum()})
    counts["rate"] = counts["selected"] / counts["rows"]
    return counts


def _configured_reference(model: GovernedModel, name: str) -> str | None:
    return next(a.reference for a in model.protected_attributes if a.label == name)


def _reference(model: GovernedModel, name: str, table: pd.DataFrame) -> str | None:
    """The group the attribute's others are compared with in this window; None when the configured one is absent."""
    configured = _configured_reference(model, name)
    if configured is None:
        return str(table["rows"].idxmax())
    return configured if configured in table.index else None


def _absent_references(by_attribute: dict) -> str:
    absent = [
        f"{name} {entry['reference_group']!r}" for name, entry in by_attribute.items() if entry.get("reference_absent")
    ]
    return f" (reference group absent from the window: {', '.join(absent)})" if absent else ""


def _attribute_entry(model: GovernedModel, name: str, reference: str | None, groups: dict) -> dict:
    if reference is None:
        return {"reference_group": _configured_reference(model, name), "reference_absent": True, "groups": groups}
    return {"reference_group": str(reference), "groups": groups}


def _ratio_interval(group: pd.Series, reference: pd.Series, z: float) -> tuple[float | None, float, float]:
    """Disparate impact (rate ratio) and its Katz log interval; a zero cell gets the Haldane correction."""
    a1, n1, a0, n0 = (
        float(group["selected"]),
        float(group["rows"]),
        float(reference["selected"]),
        float(reference["rows"]),
    )
    point = (a1 / n1) / (a0 / n0) if a0 else None
    if min(a1, a0, n1 - a1, n0 - a0) == 0:
        a1, n1, a0, n0 = a1 + 0.5, n1 + 1, a0 + 0.5, n0 + 1
    log_ratio = math.log((a1 / n1) / (a0 / n0))
    se = math.sqrt(1 / a1 - 1 / n1 + 1 / a0 - 1 / n0)
    return point, math.exp(log_ratio - z * se), math.exp(log_ratio + z * se)


def _z(confidence: float, comparisons: int) -> float:
    """Two-sided critical value, Bonferroni-adjusted: every group compared in a window shares the error rate."""
    return NormalDist().inv_cdf(1 - (1 - confidence) / (2 * max(comparisons, 1)))
