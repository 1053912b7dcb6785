"""The audit console in a real browser (Debian's chromium driven by Playwright), every request off the API
refused: an auditor's journeys over the lineage world. Set GOVERN_SCREENSHOTS=docs/images to refresh the
README's console screenshots from this test."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from governance import events
from governance.console import links
from governance.ledger import Ledger
from governance.serving.app import create_app
from tests.helpers import RunningAPI
from tests.lineage.conftest import copy_of
from tests.lineage.world import MODEL, V1, V2, World
from tests.test_ui import BROWSER_ARGS, CHROMIUM, _screenshot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: `make test` installs Debian's package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def served(world: World):
    with RunningAPI(create_app(world.settings, world.life.config, poll_seconds=0.2)) as api:
        yield api


class Offline:
    """A page that may load only from the API; anything else is refused and remembered."""

    def __init__(self, browser, url: str) -> None:
        self.url, self.refused = url, []
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.route("**/*", self._only_the_api)

    def _only_the_api(self, route) -> None:
        if route.request.url.startswith(self.url):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def open(self, path: str) -> str:
        response = self.page.goto(f"{self.url}{path}")
        self.status = response.status
        return self.page.inner_text("body")

    def verification(self) -> str:
        """The verify page, followed as the browser follows it: it reloads itself until the result is there."""
        with self.page.expect_response(
            lambda r: "/ledger/verify" in r.url and r.status != 202, timeout=60_000
        ) as result:
            self.page.goto(f"{self.url}/console/ledger/verify")
        self.status = result.value.status
        self.page.wait_for_selector("main p.ok, main p.bad")
        return self.page.inner_text("body")


@pytest.fixture
def tab(browser, served):
    offline = Offline(browser, served.url)
    yield offline
    offline.page.close()
    assert offline.refused == []


def test_inventory_then_a_model_at_a_glance(tab):
    text = tab.open("/console/")
    assert tab.status == 200 and "Champion (verified)" in text and V1 in text
    assert tab.page.evaluate("getComputedStyle(document.querySelector('nav')).backgroundColor") == "rgb(29, 43, 58)"
    _screenshot(tab.page, "console_inventory.png")
    tab.page.get_by_role("link", name=MODEL, exact=True).click()
    tab.page.wait_for_selector("text=Actions (signed on your machine)")
    assert "govern disable credit_scoring --as YOUR_NAME" in tab.page.inner_text("body")


def test_a_versions_lineage_with_every_check(tab):
    text = tab.open(links.version_url(MODEL, V2, "/console"))
    assert tab.status == 200 and "Every check" in text and "DOES NOT VERIFY" not in text
    assert tab.page.locator("td .ok", has_text="verified").count() >= 10
    _screenshot(tab.page, "console_lineage.png")


def test_a_decisions_trace(tab, world):
    decision = world.decisions["after_rollback"][0]["decision_id"]
    text = tab.open(links.decision_url(decision, "/console"))
    assert tab.status == 200 and f"Decision {decision}" in text and f"Lineage of {V1}" in text


def test_the_card_with_its_plots(tab):
    tab.open(links.version_url(MODEL, V2, "/console"))
    tab.page.get_by_role("link", name="model_card.html").click()
    tab.page.wait_for_selector("img")
    drawn = tab.page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
    assert len(drawn) >= 3 and all(drawn)
    tab.page.locator("img").first.scroll_into_view_if_needed()
    _screenshot(tab.page, "console_model_card.png")


def test_the_ledger_verifies_and_pages(tab):
    text = tab.verification()
    assert tab.status == 200 and "The ledger verifies" in text
    tab.page.get_by_role("link", name="Ledger", exact=True).click()
    tab.page.fill("input[name=action]", "approval.granted")
    tab.page.get_by_role("button", name="Filter").click()
    tab.page.wait_for_url("**/console/ledger?*action=approval.granted*")
    assert tab.page.locator("tbody tr").count() == 2


def test_a_tampered_ledger_is_shown_as_such(browser, world, tmp_path):
    settings = copy_of(world, tmp_path / "govern")
    granted = Ledger.for_settings(settings).latest(events.ApprovalGranted, model=MODEL, version=V2)
    with closing(sqlite3.connect(settings.home / "governance.db")) as db:
        db.execute(
            "UPDATE ledger_entries SET content = replace(content, 'rhea', 'mallory') WHERE seq = ?", (granted.seq,)
        )
        db.commit()
    with RunningAPI(create_app(settings, world.life.config)) as api:
        tab = Offline(browser, api.url)
        text = tab.verification()
        assert tab.status == 409 and f"does NOT verify, from entry #{granted.seq}" in text
        _screenshot(tab.page, "console_ledger_tampered.png")
        tab.page.get_by_role("link", name=f"#{granted.seq}").click()
        tab.page.wait_for_selector("text=FAILS")
        tab.page.close()
        assert tab.refused == []
