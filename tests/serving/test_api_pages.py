"""The API's own pages in a real browser with every request off the API refused: they still render."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.serving.conftest import MODEL
from tests.test_ui import BROWSER_ARGS, CHROMIUM

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def offline_browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: `make test` installs Debian's package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield browser
        browser.close()


@pytest.mark.parametrize(
    "page_path, rendered",
    [
        ("/docs", f"#swagger-ui .opblock-summary-path[data-path='/models/{MODEL}/decisions']"),
        ("/redoc", "redoc-wrap, .redoc-wrap"),
    ],
)
def test_the_api_pages_render_with_the_network_off(api, offline_browser, page_path, rendered):
    page, refused = offline_browser.new_page(), []

    def only_the_api(route) -> None:
        if route.request.url.startswith(api.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_api)
    try:
        page.goto(f"{api.url}{page_path}")
        page.wait_for_selector(rendered, timeout=20_000)
        assert "governance-assets scoring API" in page.content()
    finally:
        page.close()
    assert refused == []
