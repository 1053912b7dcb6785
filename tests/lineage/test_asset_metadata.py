"""Asset metadata on the lineage world: figures read as the model card prints them (rounded, never a float's full
expansion), and its links open console pages on the serving address."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import dagster as dg
import httpx
import pytest
from fastapi.testclient import TestClient

from governance import events
from governance.console import links
from governance.serving.app import create_app
from tests.lineage.world import APPROVERS, MODEL, V1, V2, World

pytestmark = pytest.mark.slow


def _materialization(world: World, asset: str, version: str = V1) -> dg.EventLogRecord:
    records = world.life.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey([MODEL, asset]), asset_partitions=[version]), limit=1
    ).records
    return records[0]


def _metadata(world: World, asset: str) -> dict:
    return _materialization(world, asset).asset_materialization.metadata


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


def _page(world: World, console: TestClient, link: dg.MetadataValue, *shows: str) -> None:
    """The link opens a console page that answers 200 and shows each of `shows`."""
    page = _opened(world, console, link)
    assert page.status_code == 200, (link, page.text[:2000])
    assert all(text in page.text for text in shows), (link, [t for t in shows if t not in page.text])


@pytest.mark.parametrize(("version", "previous"), [(V1, None), (V2, V1)])
def test_a_deployment_and_the_serving_state_it_observed_carry_the_ledgers_digests_and_console_links(
    world, console, version, previous
):
    ledger = world.services.ledger
    completed = ledger.latest(events.DeploymentCompleted, model=MODEL, version=version)
    registered = ledger.latest(events.ModelRegistered, model=MODEL, version=version)
    requested = ledger.latest(events.ApprovalRequested, model=MODEL, version=version)
    released = ledger.latest(events.ReleaseApproved, model=MODEL, version=version)
    assert completed and registered and requested and released
    deployed = _materialization(world, "production_deployment", version)
    shown = deployed.asset_materialization.metadata
    assert shown["artifact_sha256"].value == completed.artifact == registered.artifact
    assert shown["evidence_pack_digest"].value == completed.evidence_pack == requested.evidence_pack
    assert shown["policy_digest"].value == requested.policy
    assert shown["data_md5"].value == registered.dvc_md5
    assert shown["approver"].value == released.approver == APPROVERS[version]
    assert shown["approval_statement"].value == completed.approval == released.statement
    assert shown["deployment_id"] == dg.MetadataValue.text(str(completed.deployment_id))
    # what served then is named as of then: a later rollback or kill switch shows on serving_state, not here
    assert "serving_when_deployed" in shown and not any(name.endswith("_now") for name in shown)
    assert shown["previous_champion"].value == previous  # none is null, never a 0
    assert (shown["ledger_entry"].value, shown["ledger_seq"]) == (
        completed.entry_hash,
        dg.MetadataValue.text(str(completed.seq)),  # an identifier: text, never plotted
    )
    _page(world, console, shown["ledger_link"], f"Ledger entry #{completed.seq}", completed.entry_hash, "verify")
    _page(world, console, shown["console"], f"{version}:", "approval granted")

    run = deployed.event_log_entry.run_id
    said = [entry.user_message for entry in world.life.instance.all_logs(run)]
    assert f"{version} deployed; serving state: {version}" in said
    observed = world.life.instance.fetch_observations(dg.AssetKey([MODEL, "serving_state"]), limit=10).records
    state = next(r for r in observed if r.event_log_entry.run_id == run).asset_observation.metadata
    assert (state["serving"].value, state["champion"].value) == (version, version)
    assert state["how"].value.startswith(f"deployed by {completed.actor} at ")
    assert (state["kill_switch"].value, state["last_rollback"].value) == ("off (never switched)", "none")
    assert (state["artifact_sha256"].value, state["evidence_pack_digest"].value, state["approval_statement"].value) == (
        completed.artifact,
        completed.evidence_pack,
        completed.approval,
    )
    _page(world, console, state["move_ledger_link"], f"Ledger entry #{completed.seq}", completed.entry_hash)
    _page(world, console, state["console"], f"{MODEL}</h1>", "Versions")
