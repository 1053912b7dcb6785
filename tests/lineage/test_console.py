"""The audit console on a real governed history (the lineage world): what each page shows, bad input, and that
crawling every page writes nothing (a tampered ledger on its pages: tests/attacks/test_ledger_edits.py)."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import replace
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from governance import events
from governance.console import app as console_app
from governance.console import links
from governance.ledger import Ledger
from governance.serving.app import create_app
from jobs.candidates import requested_candidate
from tests.helpers import Lifecycle, console_verification
from tests.lineage.conftest import copy_of
from tests.lineage.world import MODEL, SEEDS, V1, V2, World

pytestmark = pytest.mark.slow
TRACEBACK = ("Traceback", 'File "', "Error(")


def _client(settings, config=None) -> TestClient:
    """The console as served: mounted on the scoring API (no lifespan: nothing is followed or served)."""
    return TestClient(create_app(settings, config), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def console(world: World) -> TestClient:
    return _client(world.settings, world.life.config)


def _body(response) -> str:
    """The page's HTML, entities decoded; never a traceback."""
    text = unescape(response.text)
    assert not any(marker in text for marker in TRACEBACK), text[:2000]
    return text


def test_the_inventory_shows_the_verified_champion_and_kill_switch(console):
    response = console.get("/console/")
    body = _body(response)
    assert response.status_code == 200
    row = re.search(r"<tr><td><a href=\"/console/models/credit_scoring\">credit_scoring</a>.*?</tr>", body).group(0)
    # the world ends rolled back to v1 with the kill switch turned off again: v1, not the later v2
    assert f">{V1}</a>" in row and "rollback by paul" in row and V2 not in row
    assert ">off<" in row and "high" in row
    assert "no window judged yet" in row


def test_the_model_page_lists_versions_and_offers_signed_commands(console):
    body = _body(console.get("/console/models/credit_scoring"))
    assert f">{V1}</a>" in body and f">{V2}</a>" in body
    assert "govern disable credit_scoring --as YOUR_NAME --reason why" in body
    assert "govern rollback credit_scoring --as YOUR_NAME --reason why" in body
    assert "<form" not in body.split("Actions")[1]  # no action is taken from the browser


def test_a_versions_lineage_shows_every_check_verified(console, world):
    response = console.get(f"/console/models/{MODEL}/versions/{V2}")
    body = _body(response)
    assert response.status_code == 200, body
    assert "approval granted" in body and "rhea" in body and "rollback" in body
    assert "candidate request" in body and "requested by dana" in body  # as `govern lineage` says it
    first = _body(console.get(f"/console/models/{MODEL}/versions/{V1}"))
    assert f"none → {V1}" in first and "None →" not in first  # the first deployment replaced nothing
    checks = body.split("Every check")[1].split("</table>")[0]
    assert checks.count('class="ok">verified<') >= 10 and "DOES NOT VERIFY" not in checks
    assert "model_card.html" in body and "evidence-pack.zip" in body


def test_a_decisions_trace_shows_the_rollback_in_force(console, world):
    decision = world.decisions["after_rollback"][0]["decision_id"]
    response = console.get(links.decision_url(decision, "/console"))
    body = _body(response)
    assert response.status_code == 200, body
    assert f"Decision {decision}" in body and "rollback #" in body and f"to {V1}" in body
    assert f"Lineage of {V1}" in body


def test_the_model_card_is_served_from_the_sealed_pack_with_its_plots(console):
    response = console.get(links.evidence_file_url(MODEL, V2, "model_card.html", "/console"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.text.count("data:image/svg+xml;base64,") >= 3
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_a_versions_card_as_published_is_served_with_its_plots(console):
    assert links.card_url(MODEL, V1, "/console") in console.get(f"/console/models/{MODEL}/versions/{V1}").text
    response = console.get(links.card_url(MODEL, V1, "/console"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.text.count("data:image/svg+xml;base64,") >= 3 and f"Model card: {MODEL} {V1}" in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_a_card_changed_after_it_was_ledgered_is_not_served(world, tmp_path):
    settings = copy_of(world, tmp_path / "govern")
    with (settings.model_dir(MODEL, V1) / "model_card.html").open("a") as card:
        card.write("<p>approved by everyone</p>")
    response = _client(settings, world.life.config).get(links.card_url(MODEL, V1, "/console"))
    assert response.status_code == 409
    assert "model_card.html of credit_scoring-v1 is missing or no longer the card ledgered in entry #" in _body(
        response
    )
    assert "approved by everyone" not in response.text


def test_the_evidence_pack_downloads_and_verifies(console, tmp_path):
    from governance.lineage.verify import verify_pack

    response = console.get(links.evidence_pack_url(MODEL, V1, "/console"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    archive = tmp_path / "pack.zip"
    archive.write_bytes(response.content)
    assert verify_pack(archive).ok


def test_the_ledger_pages_through_every_entry_newest_first(console, world):
    stored = [e.seq for e in Ledger.for_settings(world.settings).entries()]
    seen, url = [], "/console/ledger"
    while url:
        body = _body(console.get(url))
        seen += [int(s) for s in re.findall(r'<td><a href="/console/ledger/(\d+)">', body)]
        older = re.search(r'<a href="([^"]+)">Older entries', body)
        url = older.group(1) if older else None
    assert seen == stored[::-1]


def test_the_ledger_filters_by_type_model_and_version(console, world):
    body = _body(console.get(links.ledger_url("/console", model=MODEL, version=V1, action="approval.granted")))
    rows = re.findall(r"<tr><td><a href=\"/console/ledger/(\d+)\">.*?</tr>", body)
    granted = Ledger.for_settings(world.settings).events(events.ApprovalGranted, model=MODEL, version=V1)
    assert [int(s) for s in rows] == [g.seq for g in granted][::-1] and rows


def test_a_ledger_entry_shows_its_verified_inclusion_proof(console):
    response = console.get(links.ledger_entry_url(3, "/console"))
    body = _body(response)
    assert response.status_code == 200 and "entry hash and inclusion proof verify" in body
    assert "Inclusion proof" in body


def test_the_ledger_verifies(console, world):
    response = console_verification(console)
    assert response.status_code == 200
    assert f"The ledger verifies: {Ledger.for_settings(world.settings).size()} entries" in _body(response)


def test_a_long_verification_answers_at_once_then_shows_its_result(world, tmp_path, monkeypatch):
    settings = copy_of(world, tmp_path / "govern")
    padding = {"actor": "system:test", "action": events.PerformanceReportPublished.action}
    Ledger.for_settings(settings).append_records(
        [{**padding, "subject": {"model": "other", "version": "other-v1"}, "payload": {"i": i}} for i in range(20_000)]
    )
    monkeypatch.setattr(console_app, "VERIFY_WAIT_SECONDS", 0.0)  # the page answers before any verification ends
    console = _client(settings, world.life.config)
    first = console.get("/console/ledger/verify")
    assert first.status_code == 202 and "Verifying the whole ledger" in _body(first)
    reload = re.search(r'<meta http-equiv="refresh" content="1; url=([^"]+)">', first.text).group(1)
    assert reload in console.get("/console/ledger/verify").text  # a second visit joins the verification running
    result = console_verification(console)
    assert result.status_code == 200 and "The ledger verifies: " in _body(result)
    assert f"{Ledger.for_settings(settings).size()} entries" in result.text
    unknown = console.get(links.ledger_verify_url("/console", run="no-such-run"))
    assert unknown.status_code == 404 and "no ledger verification 'no-such-run'" in _body(unknown)


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/console/models/no_such_model", 404, "unknown model 'no_such_model'"),
        (f"/console/models/{MODEL}/versions/{MODEL}-v9", 404, f"{MODEL}-v9"),
        (f"/console/models/{MODEL}/versions/garbage", 404, "'garbage' is not a version key"),
        (f"/console/models/no_such_model/versions/{V1}", 404, "unknown model"),
        (f"/console/models/{MODEL}/versions/{MODEL}-v9/card", 404, f"{MODEL}-v9 has no published model card"),
        (f"/console/models/{MODEL}/versions/{V1}/evidence/secret.txt", 404, "has no file 'secret.txt'"),
        (f"/console/models/{MODEL}/versions/{V1}/evidence/../../keys/system.key", 404, "no"),
        ("/console/decisions/not-a-decision", 404, "decision 'not-a-decision' is not in the decision log"),
        ("/console/ledger/999999", 404, "there is no ledger entry 999999"),
        ("/console/ledger/0", 404, "there is no ledger entry 0"),
        ("/console/ledger/abc", 422, "seq"),
        ("/console/ledger?before=-1", 422, "before"),
        (
            "/console/ledger/99999999999999999999999999999",
            404,
            "there is no ledger entry 99999999999999999999999999999",
        ),
        ("/console/ledger/9223372036854775808", 404, "there is no ledger entry 9223372036854775808"),
        ("/console/ledger?before=9223372036854775808", 422, "before"),
        (f"/console/models/{MODEL}/monitoring/99999999999999999999999", 404, "is no monitoring report"),
        (f"/console/models/{MODEL}/monitoring/3", 404, "ledger entry 3 is no monitoring report"),
        ("/console/nothing/here", 404, "no console page at /console/nothing/here"),
    ],
)
def test_bad_input_gets_a_clear_page(console, path, status, says):
    response = console.get(path)
    assert response.status_code == status, response.text
    assert says in _body(response) and "<h1>" in response.text


V3 = f"{MODEL}-v3"


@pytest.fixture(scope="module")
def pending(world: World, tmp_path_factory):
    """A copy of the world with v3 requested by dana (signed, as `govern train` does) and run through the real
    candidate job: its sealed evidence pack waits for an approver."""
    settings = copy_of(world, tmp_path_factory.mktemp("pending") / "govern")
    life = Lifecycle.of(settings)
    seed = {"ops": {f"{MODEL}__applications": {"config": {"seed": SEEDS[V2]}}}}
    version, run = requested_candidate(
        life.defs, life.instance, life.services, life.config.model(MODEL), ("dana", world.key("dana")), seed
    )
    assert (version, run.success) == (V3, True)
    return settings


def _state_copy(settings, home: Path):
    shutil.copytree(settings.home, home)
    return replace(settings, home=home)


def _shown_command(console: TestClient, verb: str) -> tuple[str, list[str]]:
    """The `govern <verb>` line the model page shows for v3, and who the page says may approve."""
    body = _body(console.get(links.model_url(MODEL, "/console")))
    waiting = body.split("Approvals waiting")[1].split("<h2")[0]
    assert f"<b>{V3}</b> waits for approval" in waiting, waiting
    may = re.search(r"may approve: ([^)]*)\)", waiting).group(1).split(", ")
    lines = re.findall(rf'<pre class="command">(govern {verb} [^<]*)</pre>', waiting)
    assert len(lines) == 1, waiting
    return lines[0], may


def _run_as_shown(settings, line: str) -> subprocess.CompletedProcess:
    """The line run by a shell on the approver's machine: `govern` on the PATH, the state dir from the environment
    (its demo keys are the approvers' own)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GOVERN_")},
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GOVERN_HOME": str(settings.home),
        "GOVERN_CONFIG": str(settings.config_path),
        "GOVERN_POLICIES": str(settings.policies_dir),
    }
    return subprocess.run(line, shell=True, env=env, capture_output=True, text=True, timeout=300)


def test_the_approve_command_a_pending_version_shows_approves_it(pending, tmp_path):
    settings = _state_copy(pending, tmp_path / "govern")
    console = _client(settings)
    line, may = _shown_command(console, "approve")
    request = Ledger.for_settings(settings).latest(events.ApprovalRequested, model=MODEL, version=V3)
    assert f"--evidence {request.evidence_pack}" in line and "YOUR_NAME" in line
    assert "dana" not in may and "ravi" in may  # who requested v3 may not approve it
    done = _run_as_shown(settings, line.replace("YOUR_NAME", "ravi"))
    assert done.returncode == 0, done.stdout + done.stderr
    granted = Ledger.for_settings(settings).latest(events.ApprovalGranted, model=MODEL, version=V3)
    assert (granted.actor, granted.evidence_pack) == ("ravi", request.evidence_pack)
    page = _body(console.get(links.model_url(MODEL, "/console")))
    assert f"{V3}: approved by ravi, not yet released" in page and "govern approve" not in page


def test_the_reject_command_a_pending_version_shows_rejects_it(pending, tmp_path):
    settings = _state_copy(pending, tmp_path / "govern")
    console = _client(settings)
    line, may = _shown_command(console, "reject")
    done = _run_as_shown(settings, line.replace("YOUR_NAME", may[0]))
    assert done.returncode == 0, done.stdout + done.stderr
    rejected = Ledger.for_settings(settings).latest(events.ApprovalRejected, model=MODEL, version=V3)
    assert rejected.actor == may[0]
    assert (
        V3 not in _body(console.get(links.model_url(MODEL, "/console"))).split("Approvals waiting")[1].split("<h2")[0]
    )


def _snapshot(settings) -> dict:
    """Row counts of every table of every SQLite database in the state dir, the ledger head, and every file's
    size and modification time (SQLite's -wal/-shm files change on any read and are left out)."""
    found: dict = {"head": (Ledger.for_settings(settings).size(), Ledger.for_settings(settings).root())}
    for path in sorted(settings.home.rglob("*")):
        if path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal")):
            found[str(path)] = (path.stat().st_size, path.stat().st_mtime_ns)
    for db in sorted(settings.home.rglob("*.db")):
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            found[f"{db}:rows"] = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    return found


def _crawl(console: TestClient, start: str) -> set[str]:
    """Every console page reachable by links from `start` (each fetched once)."""
    seen, todo = set(), [start]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        response = console.get(url)
        assert response.status_code < 500, (url, response.status_code)
        if response.headers["content-type"].startswith("text/html"):
            for href in re.findall(r'href="([^"]+)"', response.text):
                target = urljoin(url, href.replace("&amp;", "&"))
                if target.startswith("/console/") and "/static/" not in target:
                    todo.append(target)
    return seen


def test_no_page_writes_anything(world, tmp_path):
    settings = copy_of(world, tmp_path / "govern")
    console = _client(settings, world.life.config)
    before = _snapshot(settings)
    crawled = _crawl(console, "/console/")
    crawled |= _crawl(console, links.decision_url(world.decisions["kill_switch"][0]["decision_id"], "/console"))
    assert any(u.endswith("evidence-pack.zip") for u in crawled) and any("/decisions/" in u for u in crawled)
    assert len(crawled) > 50
    assert _snapshot(settings) == before


def test_console_links_follow_the_serving_address(world):
    from dataclasses import replace

    settings = replace(world.settings, serve_url="https://governance.example/")
    base = links.console_base(settings)
    assert links.version_url(MODEL, V1, base) == f"https://governance.example/console/models/{MODEL}/versions/{V1}"
    assert (
        links.ledger_url(base, model=MODEL, version=None)
        == "https://governance.example/console/ledger?model=credit_scoring"
    )
    assert (
        links.decision_url("a b", links.console_base(world.settings)) == "http://127.0.0.1:8000/console/decisions/a%20b"
    )
