"""The Dagster UI in a real browser (Debian's chromium driven by Playwright, never a downloaded browser).

A reviewer's view of a real state dir: the lineage of the governed graph, the
model card rendered from asset metadata, and the release gate's blocking check
red with the policy's reasons. Set GOVERN_SCREENSHOTS=docs/images to refresh the
README's screenshots from this test.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO, SMALL_CONFIG, Lifecycle

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ASSETS = [
    "applications",
    "validated_applications",
    "trained_model",
    "performance_report",
    "fairness_report",
    "explainability_report",
    "model_card",
    "release_gate",
    "approval_request",
    "approved_release",
    "production_deployment",
]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: `make test` installs Debian's package")
    home = tmp_path_factory.mktemp("ui") / "govern"
    life = Lifecycle(home, SMALL_CONFIG)
    assert life.candidate()[1].success
    biased = {"ops": {"credit_scoring__applications": {"config": {"bias": 0.6}}}}
    from jobs.candidates import next_candidate_key

    key = next_candidate_key(life.instance, life.registry, life.config.model("credit_scoring"))
    life.defs.resolve_job_def("credit_scoring_candidate").execute_in_process(
        instance=life.instance, partition_key=key, run_config=biased, raise_on_error=False
    )
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(life.settings.dagster_home),
        "GOVERN_HOME": str(home),
        "GOVERN_CONFIG": str(SMALL_CONFIG),
        "GOVERN_POLICIES": str(REPO / "policies"),
    }
    webserver = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            "-w",
            str(REPO / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url)
        yield url, key, life
    finally:
        os.killpg(webserver.pid, signal.SIGTERM)
        webserver.wait(timeout=30)


@pytest.fixture(scope="module")
def page(ui):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        yield page
        browser.close()


def test_lineage_shows_the_governed_graph(ui, page):
    url, *_ = ui
    page.goto(f"{url}/asset-groups/credit_scoring_release@governance_assets/lineage", wait_until="networkidle")
    _skip_welcome(page)
    page.wait_for_selector("text=production_deployment", timeout=20_000)
    text = page.inner_text("body")
    assert all(name in text for name in ASSETS), [n for n in ASSETS if n not in text]
    _screenshot(page, "lineage.png")


def test_the_model_card_is_readable_from_asset_metadata(ui, page):
    url, *_ = ui
    page.goto(f"{url}/assets/credit_scoring/model_card", wait_until="networkidle")
    page.wait_for_selector("text=ledger_entry", timeout=20_000)
    text = page.inner_text("body")
    for expected in ("card", "complete", "html_sha256", "consumer-credit-risk", "governance/risk_tier: high"):
        assert expected in text, expected
    page.get_by_text("[Show Markdown]").first.click()
    page.wait_for_selector("text=disparate impact vs reference", timeout=10_000)
    page.wait_for_timeout(800)  # the dialog fades in
    dialog = page.inner_text("body")
    assert "Model card: credit_scoring credit_scoring-v" in dialog and "plots: see the HTML card" in dialog
    page.get_by_role("heading", name="Performance").scroll_into_view_if_needed()
    _screenshot(page, "model_card.png")


def test_the_release_gate_check_is_red_with_the_policys_reasons(ui, page):
    url, key, _ = ui
    page.goto(f"{url}/assets/credit_scoring/release_gate?view=checks", wait_until="networkidle")
    page.wait_for_selector("text=policy_decision", timeout=20_000)
    text = page.inner_text("body")
    assert "This is a blocking asset check." in text
    assert "Failed" in text and "fairness.disparate_impact" in text and "sex=F vs M" in text
    _screenshot(page, "release_gate_check.png")


def test_a_run_page_shows_events_as_they_are_stored(ui, page):
    url, _, life = ui
    run = life.instance.create_run_for_job(life.defs.resolve_job_def("credit_scoring_candidate"))
    page.goto(f"{url}/runs/{run.run_id}", wait_until="networkidle")
    life.instance.report_engine_event("stored while the page is open", run)  # through a pooled connection
    page.wait_for_selector("text=stored while the page is open", timeout=20_000)


def _skip_welcome(page) -> None:
    """A fresh browser profile may get the 'Join the Dagster community' dialog (STACK-NOTES)."""
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()


def _screenshot(page, name: str) -> None:
    target = os.environ.get("GOVERN_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / name))


def _wait_until_up(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"dagster-webserver did not answer at {url}")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
