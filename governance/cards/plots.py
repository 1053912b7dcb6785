"""The model card's plots, drawn from the reports as SVG files.

Written as SVG text here rather than drawn with matplotlib: matplotlib's layout and rasterising cost
0.7 s of every candidate run, a sixth of what governance adds to training at a million rows, where
these four charts take milliseconds, stay sharp at any zoom and keep their labels as text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import overload

import numpy as np
import pandas as pd

_BAR, _GUIDE, _INK = "#4C72B0", "#999", "#1d232a"
_LOW, _HIGH, _MISSING = (0, 139, 251), (255, 0, 81), "#bbb"  # SHAP's colours for low and high feature values
_SHADES = 10  # colour steps between a feature's lowest and highest values
_DOT = 4  # pixels across a beeswarm dot
_SHAP_FEATURES = 12


@dataclass
class _Chart:
    """A plot area of `width` x `height` pixels whose top left corner is at (`left`, `top`), showing the
    data ranges `xs` and `ys`; marks are SVG elements in pixel coordinates."""

    left: float
    top: float
    width: float
    height: float
    xs: tuple[float, float] = (0.0, 1.0)
    ys: tuple[float, float] = (0.0, 1.0)
    marks: list[str] = field(default_factory=list)

    @overload
    def x(self, value: float) -> float: ...
    @overload
    def x(self, value: np.ndarray) -> np.ndarray: ...
    def x(self, value: float | np.ndarray) -> float | np.ndarray:
        low, high = self.xs
        return np.round(self.left + (value - low) / (high - low) * self.width, 1)

    @overload
    def y(self, value: float) -> float: ...
    @overload
    def y(self, value: np.ndarray) -> np.ndarray: ...
    def y(self, value: float | np.ndarray) -> float | np.ndarray:
        low, high = self.ys
        return np.round(self.top + self.height - (value - low) / (high - low) * self.height, 1)

    def line(self, xs, ys, colour: str = _BAR, *, dashed: bool = False, dots: bool = False) -> None:
        points = " ".join(f"{self.x(a)},{self.y(b)}" for a, b in zip(xs, ys))
        dash = ' stroke-dasharray="5 4" stroke-width="1"' if dashed else ' stroke-width="1.8"'
        self.marks.append(f'<polyline points="{points}" fill="none" stroke="{colour}"{dash}/>')
        if dots:
            self.marks.extend(
                f'<circle cx="{self.x(a)}" cy="{self.y(b)}" r="3" fill="{colour}"/>' for a, b in zip(xs, ys)
            )

    def text(
        self, x: float, y: float, words: str, *, anchor: str = "middle", size: int = 12, turned: bool = False
    ) -> None:
        turn = f' transform="rotate(-90 {x} {y})"' if turned else ""
        self.marks.append(
            f'<text x="{x}" y="{y}" text-anchor="{anchor}" font-size="{size}"{turn}>{escape(words)}</text>'
        )

    def axes(self, title: str, xlabel: str = "", ylabel: str = "", *, xticks: bool = True, yticks: bool = True) -> None:
        """The frame, ticks with their values, the axis labels and the title."""
        bottom, right = self.top + self.height, self.left + self.width
        self.marks.append(
            f'<rect x="{self.left}" y="{self.top}" width="{self.width}" height="{self.height}" '
            f'fill="none" stroke="{_INK}" stroke-width="0.8"/>'
        )
        for value in _ticks(*self.ys) if yticks else ():
            y = self.y(value)
            self.marks.append(f'<line x1="{self.left - 4}" y1="{y}" x2="{self.left}" y2="{y}" stroke="{_INK}"/>')
            self.text(self.left - 7, y + 4, f"{value:g}", anchor="end", size=11)
        for value in _ticks(*self.xs) if xticks else ():
            x = self.x(value)
            self.marks.append(f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 4}" stroke="{_INK}"/>')
            self.text(x, bottom + 17, f"{value:g}", size=11)
        if title:
            self.text((self.left + right) / 2, self.top - 10, title, size=14)
        if xlabel:
            self.text((self.left + right) / 2, bottom + 36, xlabel)
        if ylabel:
            self.text(self.left - 40, self.top + self.height / 2, ylabel, turned=True)


def roc(performance: dict, path: Path) -> Path:
    chart = _Chart(left=60, top=30, width=280, height=260)
    chart.line([0, 1], [0, 1], _GUIDE, dashed=True)
    chart.line(performance["roc_curve"]["fpr"], performance["roc_curve"]["tpr"])
    chart.text(chart.x(0.95), chart.y(0.05), f"AUC {performance['auc']:.3f}", anchor="end")
    chart.axes("ROC (test set)", "False positive rate", "True positive rate")
    return _write(path, 360, 340, "ROC curve", chart.marks)


def calibration(performance: dict, path: Path) -> Path:
    bins = performance["calibration"]["bins"]
    chart = _Chart(left=60, top=30, width=280, height=260)
    chart.line([0, 1], [0, 1], _GUIDE, dashed=True)
    chart.line([b["mean_score"] for b in bins], [b["observed_rate"] for b in bins], dots=True)
    chart.axes("Calibration (deciles)", "Mean score", "Observed rate")
    return _write(path, 360, 340, "Calibration curve", chart.marks)


def selection_rates(fairness: dict, path: Path) -> Path:
    """One panel per gated attribute: each group's approval rate with its confidence interval."""
    marks: list[str] = []
    gated = fairness["gated_attributes"]
    for i, name in enumerate(gated):
        chart = _Chart(left=50 + i * 330, top=30, width=260, height=220)
        groups = fairness["attributes"][name]["groups"]
        slot = chart.width / len(groups)
        for j, (group, figures) in enumerate(groups.items()):
            rate, (low, high) = figures["selection_rate"], figures["selection_rate_ci"]
            left, middle = chart.left + j * slot + slot * 0.15, chart.left + (j + 0.5) * slot
            chart.marks.append(
                f'<rect x="{round(left, 1)}" y="{chart.y(rate)}" width="{round(slot * 0.7, 1)}" '
                f'height="{round(chart.y(0) - chart.y(rate), 1)}" fill="{_BAR}"/>'
            )
            if low is not None:
                chart.marks.append(
                    f'<path d="M{middle - 4} {chart.y(low)}h8M{middle} {chart.y(low)}V{chart.y(high)}'
                    f'M{middle - 4} {chart.y(high)}h8" stroke="{_INK}" stroke-width="1.4"/>'
                )
            chart.text(middle, chart.top + chart.height + 17, str(group), size=11)
        chart.axes(f"Approval rate by {name}", xticks=False)
        marks.extend(chart.marks)
    return _write(path, 330 * len(gated) + 10, 280, "Approval rate by group", marks)


def shap_summary(values: pd.DataFrame, sample: pd.DataFrame, path: Path) -> Path:
    """SHAP's beeswarm: one dot per sampled row for each of the most important features (most important on
    top), placed at its attribution and coloured by the row's feature value (see `_shades`)."""
    order = values.abs().mean().sort_values(ascending=False).index[:_SHAP_FEATURES]
    low, high = min(float(values[order].min().min()), 0.0), max(float(values[order].max().max()), 0.0)
    pad = (high - low) * 0.04 or 1.0
    row = 26
    labels = 20 + 7 * max(len(str(feature)) for feature in order)  # about 7 px a character
    chart = _Chart(left=labels, top=30, width=380, height=row * len(order), xs=(low - pad, high + pad))
    chart.marks.append(
        f'<line x1="{chart.x(0)}" y1="{chart.top}" x2="{chart.x(0)}" '
        f'y2="{chart.top + chart.height}" stroke="{_GUIDE}"/>'
    )
    strokes: dict[str, list[str]] = {}
    for i, feature in enumerate(order):
        middle = chart.top + (i + 0.5) * row
        xs = chart.x(values[feature].to_numpy())
        ys = middle + _swarm(xs, half_height=row / 2 - _DOT / 2)
        for colour, x, y in zip(_shades(sample[feature]), xs, ys):
            strokes.setdefault(colour, []).append(f"M{x:.0f} {y:.1f}h0")
        chart.text(chart.left - 8, middle + 4, str(feature), anchor="end")
    chart.marks.extend(
        f'<path d="{"".join(moves)}" stroke="{colour}" stroke-width="{_DOT}" stroke-linecap="round"/>'
        for colour, moves in strokes.items()
    )
    chart.axes("", "SHAP value (impact on model output)", yticks=False)
    chart.marks.append(_colour_bar(chart.left + chart.width + 30, chart.top, chart.height))
    return _write(path, chart.left + chart.width + 110, chart.top + chart.height + 50, "SHAP summary", chart.marks)


def _swarm(xs: np.ndarray, half_height: float) -> np.ndarray:
    """Vertical offsets that stack dots sharing a dot-wide column alternately above and below the middle,
    squeezed to fit the row when a column holds more than the row has room for."""
    columns = np.floor(xs / _DOT).astype(int)
    order = np.argsort(columns, kind="stable")
    first_of_column = np.r_[True, np.diff(columns[order]) != 0]
    starts = np.maximum.accumulate(np.where(first_of_column, np.arange(len(order)), 0))
    rank = np.arange(len(order)) - starts  # position within its column: 0, 1, 2, ...
    layer = (rank + 1) // 2 * np.where(rank % 2, 1, -1)
    offsets = np.empty(len(xs))
    offsets[order] = layer * _DOT * 0.8
    reach = np.abs(offsets).max(initial=0)
    return offsets * (half_height / reach) if reach > half_height else offsets


def _shades(values: pd.Series) -> list[str]:
    """Each value's colour on the scale from the values' 5th to their 95th percentile, as SHAP colours them
    (the whole range where those are equal; categories by their code); missing values grey."""
    if not pd.api.types.is_numeric_dtype(values):
        values = values.astype("category").cat.codes.where(values.notna())
    numbers = values.to_numpy(dtype=float)
    present = numbers[~np.isnan(numbers)]
    low, high = np.percentile(present, [5, 95]) if len(present) else (0.0, 0.0)
    if low == high and len(present):
        low, high = present.min(), present.max()
    shares = np.clip((numbers - low) / ((high - low) or 1.0), 0, 1)
    steps = [_mix(i / (_SHADES - 1)) for i in range(_SHADES)]
    return [_MISSING if math.isnan(s) else steps[round(s * (_SHADES - 1))] for s in shares]


def _mix(share: float) -> str:
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(_LOW, _HIGH))


def _colour_bar(x: float, top: float, height: float) -> str:
    return (
        f'<defs><linearGradient id="shade" x1="0" y1="1" x2="0" y2="0"><stop offset="0" stop-color="{_mix(0)}"/>'
        f'<stop offset="1" stop-color="{_mix(1)}"/></linearGradient></defs>'
        f'<rect x="{x}" y="{top}" width="10" height="{height}" fill="url(#shade)"/>'
        f'<text x="{x + 14}" y="{top + 10}" font-size="11">High</text>'
        f'<text x="{x + 14}" y="{top + height}" font-size="11">Low</text>'
        f'<text x="{x + 30}" y="{top + height / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 {x + 30} {top + height / 2})">Feature value</text>'
    )


def _ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round values (steps of 1, 2 or 5 times a power of ten) between low and high."""
    if not high > low:
        return [low]
    rough = (high - low) / most
    power = 10 ** math.floor(math.log10(rough))
    step = next(power * m for m in (1, 2, 5, 10) if power * m >= rough)
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)  # -0.3 / 0.05 is -5.999...
    return [round(i * step, 12) + 0.0 for i in range(first, last + 1)]  # + 0.0: no "-0"


def _write(path: Path, width: float, height: float, title: str, marks: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="system-ui,sans-serif" fill="{_INK}">'
        f'<title>{escape(title)}</title><rect width="100%" height="100%" fill="white"/>' + "".join(marks) + "</svg>",
        encoding="utf-8",
    )
    return path
