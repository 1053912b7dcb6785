"""The model card's SVG plots: well-formed, and each mark where its figure puts it."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from governance.cards import plots

SVG = "{http://www.w3.org/2000/svg}"


def _svg(path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg" and root.find(f"{SVG}title").text
    return root


def _texts(root: ET.Element) -> list[str]:
    return [t.text for t in root.iter(f"{SVG}text")]


def _frame(root: ET.Element) -> tuple[float, float, float, float]:
    """The plot area's left, top, right and bottom."""
    frame = root.find(f"{SVG}rect[@fill='none']")
    left, top = float(frame.get("x")), float(frame.get("y"))
    return left, top, left + float(frame.get("width")), top + float(frame.get("height"))


def test_roc_curve_runs_from_the_bottom_left_corner_to_the_top_right(tmp_path):
    performance = {"auc": 0.8123, "roc_curve": {"fpr": [0, 0.1, 0.5, 1], "tpr": [0, 0.6, 0.9, 1]}}
    root = _svg(plots.roc(performance, tmp_path / "roc.svg"))
    curve = [
        [tuple(map(float, p.split(","))) for p in line.get("points").split()] for line in root.iter(f"{SVG}polyline")
    ][1]
    left, top, right, bottom = _frame(root)
    assert curve[0] == (left, bottom) and curve[-1] == (right, top) and len(curve) == 4
    assert curve[1] == (pytest.approx(left + 0.1 * (right - left)), pytest.approx(bottom - 0.6 * (bottom - top)))
    assert "AUC 0.812" in _texts(root) and "False positive rate" in _texts(root)


def test_calibration_marks_each_bin_at_its_mean_score_and_observed_rate(tmp_path):
    bins = [{"mean_score": s, "observed_rate": s * 1.2} for s in (0.05, 0.2, 0.45, 0.7)]
    root = _svg(plots.calibration({"calibration": {"bins": bins}}, tmp_path / "calibration.svg"))
    left, top, right, bottom = _frame(root)
    marks = [(float(c.get("cx")), float(c.get("cy"))) for c in root.iter(f"{SVG}circle")]
    assert marks == [
        (
            pytest.approx(left + b["mean_score"] * (right - left), abs=0.1),
            pytest.approx(bottom - b["observed_rate"] * (bottom - top), abs=0.1),
        )
        for b in bins
    ]


def test_selection_rates_draw_a_bar_per_group_at_its_rate_with_its_interval(tmp_path):
    groups = {
        "F": {"selection_rate": 0.5, "selection_rate_ci": [0.45, 0.55]},
        "M": {"selection_rate": 0.25, "selection_rate_ci": [None, None]},
    }
    fairness = {"gated_attributes": ["sex"], "attributes": {"sex": {"groups": groups}}}
    root = _svg(plots.selection_rates(fairness, tmp_path / "rates.svg"))
    left, top, right, bottom = _frame(root)
    bars = root.findall(f"{SVG}rect[@fill='{plots._BAR}']")
    heights = [float(b.get("height")) / (bottom - top) for b in bars]
    assert heights == [pytest.approx(0.5, abs=0.01), pytest.approx(0.25, abs=0.01)]
    (interval,) = root.findall(f"{SVG}path")  # an interval only where one was computed
    ends = sorted({float(y) for y in re.findall(r"M[\d.]+ ([\d.]+)h8", interval.get("d"))})
    assert ends == [
        pytest.approx(bottom - 0.55 * (bottom - top), abs=0.1),
        pytest.approx(bottom - 0.45 * (bottom - top), abs=0.1),
    ]
    assert {"F", "M", "Approval rate by sex"} <= set(_texts(root))


def test_shap_summary_shows_the_most_important_features_first_one_dot_per_row(tmp_path):
    rng = np.random.default_rng(0)
    rows, features = 200, [f"f{i}" for i in range(14)]
    sample = pd.DataFrame(rng.normal(size=(rows, 14)), columns=features)
    sample["f3"] = np.where(np.arange(rows) < 10, np.nan, sample["f3"])
    sample["f5"] = pd.Categorical(rng.choice(["a", "b"], rows))
    scale = np.arange(1, 15) ** 2  # each feature's importance: the last most important, but for f0
    values = pd.DataFrame(rng.normal(size=(rows, 14)) * scale, columns=features)
    values["f0"] = sample["f0"] * 1000  # the most important, rising with its feature value
    root = _svg(plots.shap_summary(values, sample, tmp_path / "shap.svg"))

    expected = list(values.abs().mean().sort_values(ascending=False).index[:12])
    labels = [t for t in _texts(root) if t in features]
    assert labels == expected == ["f0", *[f"f{i}" for i in range(13, 2, -1)]]
    dots = {
        c: re.findall(r"M(-?[\d.]+) (-?[\d.]+)h0", p.get("d"))
        for p in root.iter(f"{SVG}path")
        for c in [p.get("stroke")]
    }
    assert sum(len(d) for d in dots.values()) == rows * 12
    assert len(dots[plots._MISSING]) == 10  # f3's missing values
    # f0's row, the top one: its highest feature values are red and furthest right, its lowest blue and left.
    below_top_row = _frame(root)[1] + 26
    f0 = {c: [float(x) for x, y in d if float(y) < below_top_row] for c, d in dots.items()}
    assert sum(len(xs) for xs in f0.values()) == rows
    assert min(f0[plots._mix(1)]) > max(f0[plots._mix(0)])


def test_shap_summary_of_one_signed_feature_keeps_zero_in_view_and_escapes_its_name(tmp_path):
    name = 'income <after> & "tax"'
    values = pd.DataFrame({name: np.linspace(0.1, 0.5, 50)})
    root = _svg(plots.shap_summary(values, pd.DataFrame({name: np.arange(50.0)}), tmp_path / "shap.svg"))
    left, _, right, _ = _frame(root)
    zero = float(next(root.iter(f"{SVG}line")).get("x1"))
    assert left < zero < right and name in _texts(root)


def test_ticks_are_round_numbers_within_the_range():
    assert plots._ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1]
    assert plots._ticks(-1.3, 2.2) == [-1, 0, 1, 2]
    assert plots._ticks(0.013, 0.09) == [0.02, 0.04, 0.06, 0.08]
    assert plots._ticks(-0.3, 0)[0] == -0.3 and plots._ticks(-0.3, 0)[-1] == 0  # ends that division blurs
    assert plots._ticks(2, 2) == [2]
