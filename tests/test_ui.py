"""The Dagster UI in a real browser (Debian's chromium driven by Playwright, never a downloaded browser).

A reviewer's view of one real state dir (built once for the module): v1 denied by the fairness gate, v2 and
v3 approved and deployed, v3 rolled back to v2, the kill switch on. The lineage of the governed graph, the
model card rendered from asset metadata, the denial as v1's outcome in the release gate check's history, and
the serving state (v2, safe state) on the graph. Set GOVERN_SCREENSHOTS=docs/images to refresh the README's
screenshots from this test.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from governance.release.approvals import decide
from governance.release.deployment import rollback
from governance.release.kill_switch import set_kill_switch
from governance.trust.demo import demo_key_path, demo_principals
from governance.trust.keys import load_private_key
from jobs import candidate_job_name, release_job_name
from jobs.candidates import next_candidate_key
from resources import governance_resources
from sensors.approvals import APPROVALS
from tests.helpers import REPO, SMALL_CONFIG, Lifecycle

pytestmark = pytest.mark.slow
MODEL = "credit_scoring"
REQUESTED = {"governance/requested_by": "dana"}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STAGES = ["data", "training", "evaluation", "release", "monitoring", "production"]
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
    "outcome_labels",
    "monitoring_report",
    "remediation",
    "serving_state",
]


def build_ui_state(home: Path) -> tuple[Lifecycle, str]:
    """The state dir a reviewer walks: v1 denied by the fairness gate, v2 and v3 approved and deployed, v3 rolled
    back to v2 by a person, the kill switch on; the approvals sensor observed the serving state, as the daemon
    would. Returns the Lifecycle and the denied version."""
    life = Lifecycle(home, SMALL_CONFIG)
    demo_principals(life.settings)
    model = life.config.model(MODEL)
    denied = next_candidate_key(life.instance, life.registry, model)
    biased = {"ops": {f"{MODEL}__applications": {"config": {"bias": 0.6}}}}
    life.defs.resolve_job_def(candidate_job_name(MODEL)).execute_in_process(
        instance=life.instance, partition_key=denied, run_config=biased, tags=REQUESTED
    )
    for approver in ("ravi", "rhea"):
        version, run = life.candidate(requested_by="dana")  # signed, as `govern train` signs it
        assert run.success
        decide(life.services, MODEL, version, "approve", approver, _key(life, approver), comment="reviewed")
        release = life.defs.resolve_job_def(release_job_name(MODEL))
        assert release.execute_in_process(instance=life.instance, partition_key=version).success
    rollback(life.services, MODEL, "paul", _key(life, "paul"), "v3 under investigation")
    set_kill_switch(life.services, MODEL, True, "bea", _key(life, "bea"), "complaints spike")
    with dg.build_sensor_context(instance=life.instance, resources=governance_resources(life.settings)) as context:
        tick = life.defs.resolve_sensor_def(APPROVALS)(context)
    for event in tick.asset_events:  # what the daemon records from the sensor's tick
        life.instance.report_runless_asset_event(event)
    return life, denied


def _key(life: Lifecycle, principal: str):
    return load_private_key(demo_key_path(life.settings, principal))


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: `make test` installs Debian's package")
    home = tmp_path_factory.mktemp("ui") / "govern"
    life, key = build_ui_state(home)
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


def test_lineage_shows_the_governed_graph_by_stage(ui, page):
    url, *_ = ui
    page.goto(f"{url}/asset-groups", wait_until="networkidle")
    _skip_welcome(page)
    page.wait_for_selector(f"text=release_{MODEL}", timeout=20_000)
    page.mouse.click(1200, 900)  # on the graph, so that its shortcut applies
    page.keyboard.press("Alt+e")  # "Expand all groups"
    page.wait_for_selector("text=serving_state", timeout=20_000)
    tree = page.locator('[aria-label="arrow_drop_down"]')  # the side tree's stage groups, opened to list assets
    for group in reversed(range(tree.count())):
        tree.nth(group).click()
    page.wait_for_selector("text=production_deployment", timeout=20_000)
    text = page.inner_text("body")
    assert all(f"{stage}_{MODEL}" in text for stage in STAGES), text
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


def test_a_denied_versions_history_shows_the_denial_for_that_version(ui, page):
    url, denied, _ = ui
    page.goto(f"{url}/assets/credit_scoring/release_gate?view=checks", wait_until="networkidle")
    page.wait_for_selector("text=policy_decision", timeout=20_000)
    text = page.inner_text("body")
    assert "This is a non-blocking asset check." in text  # a denial is the version's outcome, not a stopped run
    assert "A denial is the gate's outcome for the version" in text
    page.get_by_text("Execution history").first.click()  # one row per evaluation, with its partition

    def evaluation_of(version: str):  # the row whose partition cell is the version (a description may name others)
        return page.locator("tr").filter(has=page.locator("td", has_text=re.compile(rf"^\s*{version}\s*$")))

    row = evaluation_of(denied)
    row.wait_for(timeout=20_000)
    for expected in ("Failed", "fairness.disparate_impact", "sex=F vs M"):
        assert expected in row.inner_text(), expected
    for allowed in (f"{MODEL}-v2", f"{MODEL}-v3"):
        assert "Passed" in evaluation_of(allowed).inner_text(), allowed
    _screenshot(page, "release_gate_check.png")


def test_the_graph_after_a_rollback_with_the_kill_switch_on_shows_v2_and_the_safe_state(ui, page):
    url, *_ = ui
    page.goto(f"{url}/locations/governance_assets/asset-groups/production_{MODEL}/lineage", wait_until="networkidle")
    page.wait_for_selector("text=Observed", timeout=20_000)  # the serving_state node, with its last observation
    page.goto(f"{url}/assets/credit_scoring/serving_state", wait_until="networkidle")
    page.wait_for_selector("text=kill_switch", timeout=20_000)
    text = page.inner_text("body")
    for expected in (
        "KILL SWITCH ON: safe state: every application is referred to manual review",
        "credit_scoring-v2",
        "rollback: rolled back by paul",
        "v3 under investigation",
        "complaints spike",
        "None: every cache agrees with the verified record.",
    ):
        assert expected in text, expected
    _screenshot(page, "serving_state.png")


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
