"""Asset metadata on the lineage world: figures read as the model card prints them (rounded, never a float's full
expansion), and its links open console pages on the serving address."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import dagster as dg
import httpx
import pytest
from fastapi.testclient import TestClient

from governance.console import links
from governance.serving.app import create_app
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


@pytest.fixture(scope="module")
def console(world: World) -> TestClient:
    """The scoring API the links name, with its console (no lifespan: nothing is followed or served)."""
    return TestClient(create_app(world.settings, world.life.config), raise_server_exceptions=False)


def _opened(world: World, console: TestClient, link: dg.MetadataValue) -> httpx.Response:
    """What a link in metadata opens: it must name a console page at the serving address."""
    url, base = urlsplit(str(link.value)), urlsplit(links.console_base(world.settings))
    assert isinstance(link, dg.UrlMetadataValue) and (url.scheme, url.netloc) == (base.scheme, base.netloc)
    assert url.path.startswith(f"{base.path}/"), url
    return console.get(url.path)


def test_the_card_and_the_sealed_evidence_open_in_the_console(world, console):
    card = _metadata(world, "model_card")
    html = _opened(world, console, card["html"])
    assert html.status_code == 200 and html.text.count("data:image/svg+xml;base64,") >= 3  # the plots
    assert f"see the [HTML card]({card['html'].value})" in str(card["card"].value)
    request = _metadata(world, "approval_request")
    pack = _opened(world, console, request["evidence_pack"])
    assert pack.status_code == 200 and pack.headers["content-type"] == "application/zip"
    lineage = _opened(world, console, request["console"])
    assert lineage.status_code == 200 and "model_card.html" in lineage.text
