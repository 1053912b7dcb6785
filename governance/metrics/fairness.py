"""Fairness of automated approvals by protected group, with bootstrap confidence intervals.

The favourable outcome is the one good for the applicant (for credit: no
default); a decision "selects" an applicant when it approves them automatically.
Point estimates come from Fairlearn's `MetricFrame` (over weighted cells, see
`metric_frame`). Intervals come from a percentile bootstrap over the test rows,
drawn as multinomial cell counts (see `_bootstrap`): Fairlearn's own `n_boot`
recomputes a whole MetricFrame per resample, 24 s for 200 resamples of 12,500
rows here, against milliseconds.

Disparate impact compares each group's selection rate with a reference group's
(configured, or the largest group), so it can fall below 1 or exceed it; over a
reference that approved nobody it is infinite, written "inf" (canonical JSON has
no infinity; `float()` reads it back).
Equal opportunity and equalized odds compare true- and false-positive rates
across the groups with at least `min_group_size` rows of each outcome (all
groups if fewer than two qualify); smaller groups are flagged `small_group`
and judged on their disparate-impact intervals.

A bootstrap says nothing honest about a small group: six rows all approved
resample to six rows all approved, an interval of zero width. So a small
group's approval rate has the exact (Clopper-Pearson) binomial interval
instead (six of six: [0.54, 1] at 95 %), and a disparate impact involving a
small group (or a small reference) is bounded by both groups' intervals, the
lowest rate over the highest and the highest over the lowest: wider than
either, so the gate fails it only when even that lies outside the band.
`selection_rate_interval` says which method each group's interval used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from scipy.stats import beta

from governance.config import GovernedModel
from governance.data.categories import category_text
from governance.digests import jsonable
from governance.errors import GovernanceError

INTERSECTION = " & "


def protected_groups(model: GovernedModel, frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Group labels per protected attribute (numeric columns cut into bands), plus their intersection.

    A categorical column's labels are written once per category, not once per row (per row, that was most
    of this function's time at a million rows); the labels are those `astype(str)` gives either way.
    """
    factorized = {}
    for attribute in model.protected_attributes:
        values = frame[attribute.column]
        if attribute.bands is not None:
            values = pd.cut(values, bins=attribute.bands, right=False)
        factorized[attribute.label] = _labelled_codes(values)
    if len(factorized) > 1:
        factorized[INTERSECTION.join(factorized)] = _intersections(list(factorized.values()))
    return {name: pd.Series(np.array(labels, dtype=object)[codes]) for name, (codes, labels) in factorized.items()}


def _labelled_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's code into a list of labels, the labels being what `values.astype(str)` gives (integer codes
    as integers, also where a missing value made them floats); every missing value is the one group "nan"."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        labels = list(np.asarray(values.cat.categories.astype(str), dtype=object)) + ["nan"]
        codes = values.cat.codes.to_numpy().astype(np.int64)
        return np.where(codes < 0, len(labels) - 1, codes), labels  # code -1: missing, which astype(str) calls "nan"
    codes, distinct = pd.factorize(category_text(values).fillna("nan"))
    return codes, list(distinct)


def _intersections(parts: list[tuple[np.ndarray, list[str]]]) -> tuple[np.ndarray, list[str]]:
    """Codes and labels of the combinations that occur, one attribute at a time (so the labels built grow
    with the combinations present, never with every possible one)."""
    codes, labels = parts[0]
    for more_codes, more_labels in parts[1:]:
        codes, present = pd.factorize(codes.astype(np.int64) * len(more_labels) + more_codes)
        labels = [f"{labels[p // len(more_labels)]}{INTERSECTION}{more_labels[p % len(more_labels)]}" for p in present]
    return codes, labels


def fairness_report(
    model: GovernedModel, y_favourable: np.ndarray, approved: np.ndarray, groups: dict[str, pd.Series], seed: int = 0
) -> dict:
    """Per attribute: MetricFrame by group, parity and odds figures, disparate impact with intervals."""
    evaluation = model.evaluation
    references = {a.label: a.reference for a in model.protected_attributes}
    rng = np.random.default_rng(seed)
    attributes = {
        name: _attribute(
            name,
            values,
            y_favourable.astype(np.int8),
            approved.astype(np.int8),
            references.get(name),
            evaluation.bootstrap_samples,
            evaluation.confidence,
            evaluation.min_group_size,
            rng,
        )
        for name, values in groups.items()
    }
    return jsonable(
        {
            "favourable_outcome": str(model.favourable_outcome),
            "selection": f"score < {model.decisioning.approve_below} (automatic approval)",
            "rows": int(len(y_favourable)),
            "bootstrap_samples": evaluation.bootstrap_samples,
            "confidence": evaluation.confidence,
            "attributes": attributes,
            "gated_attributes": [a.label for a in model.protected_attributes],
        }
    )


def metric_frame(values: pd.Series, y: np.ndarray, pred: np.ndarray) -> MetricFrame:
    """Fairlearn's MetricFrame of selection rate, TPR, FPR and count by group, given one weighted row per
    (group, outcome, decision) cell. Each metric is a (weighted) function of those counts alone, so this equals
    the frame over every row; MetricFrame stacks each row in Python (10 s for 250,000 rows), this takes ms."""
    labels = pd.Categorical(values)
    cells = labels.codes.astype(np.int64) * 4 + y.astype(np.int64) * 2 + pred.astype(np.int64)
    present = np.flatnonzero(np.bincount(cells, minlength=len(labels.categories) * 4))
    weights = np.bincount(cells, minlength=len(labels.categories) * 4)[present]
    metrics = {
        "selection_rate": selection_rate,
        "true_positive_rate": true_positive_rate,
        "false_positive_rate": false_positive_rate,
        "count": _weighted_count,
    }
    return MetricFrame(
        metrics=metrics,
        y_true=(present // 2) % 2,
        y_pred=present % 2,
        sensitive_features=pd.Series(labels.categories[present // 4].astype(str), name="group"),
        sample_params={name: {"sample_weight": weights} for name in metrics},
    )


def _weighted_count(y_true, y_pred, sample_weight) -> float:
    return float(np.sum(sample_weight))


def _attribute(
    name: str,
    values: pd.Series,
    y: np.ndarray,
    pred: np.ndarray,
    reference: str | None,
    samples: int,
    confidence: float,
    min_group_size: int,
    rng: np.random.Generator,
) -> dict:
    frame = metric_frame(values, y, pred)
    by_group = frame.by_group
    labels = [str(g) for g in by_group.index]
    if reference is None:
        reference = labels[int(np.argmax(by_group["count"].to_numpy()))]
    elif reference not in labels:
        raise GovernanceError(
            f"protected attribute {name!r}: reference group {reference!r} is not among "
            f"the groups of the test set ({', '.join(labels)})"
        )
    codes = pd.Categorical(values, categories=labels).codes
    # Rates of outcomes need enough of each outcome: smaller groups are reported, and judged on intervals only.
    per_class = np.stack([np.bincount(codes[y == c], minlength=len(labels)) for c in (0, 1)])
    measured = per_class.min(axis=0) >= min_group_size
    boot = _bootstrap(codes, len(labels), y, pred, samples, rng)
    ref = labels.index(reference)
    low, high = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    point_sel = by_group["selection_rate"].to_numpy()
    # A rate with no rows to measure (a group without one of the outcomes) is undefined, not 0 as Fairlearn has it.
    tpr_all = np.where(per_class[1] > 0, by_group["true_positive_rate"].to_numpy(dtype=float), np.nan)
    fpr_all = np.where(per_class[0] > 0, by_group["false_positive_rate"].to_numpy(dtype=float), np.nan)
    rows, selected = np.bincount(codes, minlength=len(labels)), np.bincount(codes[pred == 1], minlength=len(labels))
    rate_ci = [
        _ci(boot["selection_rate"][:, i], low, high) if measured[i] else _exact_ci(selected[i], rows[i], confidence)
        for i in range(len(labels))
    ]
    groups = {}
    for i, label in enumerate(labels):
        row = by_group.iloc[i]
        entry = {
            "rows": int(row["count"]),
            "selection_rate": float(row["selection_rate"]),
            "true_positive_rate": _num(tpr_all[i]),
            "false_positive_rate": _num(fpr_all[i]),
            "selection_rate_ci": rate_ci[i],
            "selection_rate_interval": "bootstrap" if measured[i] else "clopper-pearson",
            "small_group": not bool(measured[i]),
        }
        if i != ref:
            ratio = float(_ratio(point_sel[i], point_sel[ref]))  # infinite: the reference has no approvals
            entry["disparate_impact"] = None if np.isnan(ratio) else ratio
            entry["disparate_impact_ci"] = (
                _ci(_ratio(boot["selection_rate"][:, i], boot["selection_rate"][:, ref]), low, high)
                if measured[i] and measured[ref]
                else _ratio_bounds(rate_ci[i], rate_ci[ref])
            )
        groups[label] = entry
    odds = measured if measured.sum() >= 2 else np.ones(len(labels), dtype=bool)
    tpr, fpr = tpr_all[odds], fpr_all[odds]
    eod_boot = np.maximum(_spread(boot["true_positive_rate"][:, odds]), _spread(boot["false_positive_rate"][:, odds]))
    return {
        "reference_group": reference,
        "groups": groups,
        "demographic_parity_difference": float(frame.difference()["selection_rate"]),
        "demographic_parity_ratio": _num(frame.ratio()["selection_rate"]),  # None when nobody is approved
        "demographic_parity_difference_ci": _ci(_spread(boot["selection_rate"]), low, high),
        "odds_groups": [label for label, keep in zip(labels, odds) if keep],
        "equal_opportunity_difference": float(np.nanmax(tpr) - np.nanmin(tpr)),
        "equalized_odds_difference": float(max(np.nanmax(tpr) - np.nanmin(tpr), np.nanmax(fpr) - np.nanmin(fpr))),
        "equalized_odds_difference_ci": _ci(eod_boot, low, high),
    }


def _bootstrap(
    codes: np.ndarray, n_groups: int, y: np.ndarray, pred: np.ndarray, samples: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Per resample and group: selection rate, TPR and FPR.

    Every statistic here depends only on the counts of rows per (group, label, decision)
    cell, and resampling n rows with replacement draws those counts from a multinomial over
    the cells; so one multinomial draw per resample is the row bootstrap, exactly, at a cost
    independent of the number of rows.
    """
    cells = codes.astype(np.int64) * 4 + y.astype(np.int64) * 2 + pred
    observed = np.bincount(cells, minlength=n_groups * 4)
    counts = rng.multinomial(len(cells), observed / len(cells), size=samples).reshape(samples, n_groups, 2, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        group_rows = counts.sum(axis=(2, 3))
        return {
            "selection_rate": counts[..., 1].sum(axis=2) / group_rows,
            "true_positive_rate": counts[:, :, 1, 1] / counts[:, :, 1, :].sum(axis=2),
            "false_positive_rate": counts[:, :, 0, 1] / counts[:, :, 0, :].sum(axis=2),
        }


def _spread(per_group: np.ndarray) -> np.ndarray:
    """Largest minus smallest group value in each resample."""
    return np.nanmax(per_group, axis=1) - np.nanmin(per_group, axis=1)


def _ratio(numerator, denominator):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(numerator, dtype=float) / np.asarray(denominator, dtype=float)


def _ci(samples: np.ndarray, low: float, high: float) -> list[float | None]:
    """Percentile interval of the resamples. A resample without rows to measure (NaN) is left out; an
    infinite ratio (the reference group approved nobody in it) is kept, so a bound reaching it is infinite."""
    kept = np.sort(samples[~np.isnan(samples)])
    if not len(kept):
        return [None, None]
    return [_percentile(kept, q) for q in (low, high)]


def _exact_ci(successes: int, trials: int, confidence: float) -> list[float | None]:
    """Clopper-Pearson interval of a binomial proportion: never narrower than the data allow, 0 or 1 included."""
    alpha = 1 - confidence
    lower = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    upper = 1.0 if successes == trials else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return [lower, upper]


def _ratio_bounds(group: list[float | None], reference: list[float | None]) -> list[float | None]:
    """The widest ratio two rate intervals allow: lowest over highest, highest over lowest (infinite over a
    reference that may approve nobody; None where a bound is unknown or 0 over 0)."""
    if None in group or None in reference:
        return [None, None]
    bounds = (_ratio(group[0], reference[1]), _ratio(group[1], reference[0]))
    return [None if np.isnan(bound) else float(bound) for bound in bounds]


def _percentile(ordered: np.ndarray, q: float) -> float:
    """numpy's (linear) percentile of sorted values whose largest may be infinite (numpy's interpolation
    would give NaN next to one): infinite where it interpolates towards an infinite value."""
    position = q / 100 * (len(ordered) - 1)
    below = int(np.floor(position))
    if position == below:
        return float(ordered[below])
    if np.isinf(ordered[below + 1]):
        return float("inf")
    return float(np.percentile(ordered, q))


def _num(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
