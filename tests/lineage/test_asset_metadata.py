"""Figures in asset metadata read as the model card prints them: rounded, never a float's full expansion."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from tests.lineage.world import MODEL, V1, World

pytestmark = pytest.mark.slow


def _metadata(world: World, asset: str) -> dict:
    records = world.life.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey([MODEL, asset]), asset_partitions=[V1]), limit=1
    ).records
    return records[0].asset_materialization.metadata


def _report(world: World, name: str) -> dict:
    return json.loads((world.settings.model_dir(MODEL, V1) / f"{name}.json").read_bytes())


def test_performance_and_fairness_figures_are_rounded_as_the_card_rounds_them(world):
    performance, fairness = _report(world, "performance"), _report(world, "fairness")
    shown = _metadata(world, "performance_report")
    measured = {name: performance[name] for name in ("auc", "gini", "ks", "brier")}
    measured["calibration_error"] = performance["calibration"]["expected_calibration_error"]
    for name, value in measured.items():
        assert shown[name].value == round(value, 4), name  # the card prints "%.4f"
    odds = _metadata(world, "fairness_report")
    for attribute in fairness["gated_attributes"]:
        value = fairness["attributes"][attribute]["equalized_odds_difference"]
        assert odds[f"equalized_odds_difference[{attribute}]"].value == round(value, 3)  # the card: "%.3f"
    trained = _metadata(world, "trained_model")["test_auc"].value
    assert trained == round(trained, 4) and len(repr(trained).split(".")[1]) <= 4
