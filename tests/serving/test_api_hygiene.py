"""What the API tells about itself and refuses: liveness and readiness with the safe state, bodies over the
configured size, ledger entries that cannot exist, and the metrics of the safe state."""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.helpers import wait_until
from tests.serving.conftest import MODEL, body, flip_kill_switch

DECIDE = f"/models/{MODEL}/decisions"


def metric(client, name: str) -> float:
    found = re.search(rf'^{name}{{model="{MODEL}"}} (\S+)$', client.get("/metrics").text, re.MULTILINE)
    return float(found.group(1))


def test_health_readiness_and_metrics_state_the_safe_state(deployed, client):
    alive = client.get("/healthz").json()
    assert alive["status"] == "alive"
    assert alive["models"][MODEL]["answering_version"] == 1 and alive["models"][MODEL]["safe_state"] is False
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["models"][MODEL] == {
        "champion_version": 1,
        "answering_version": 1,
        "safe_state": False,
        "safe_state_reason": None,
        "kill_switch": "off",
    }
    wait_until(lambda: metric(client, "govern_serving_served_version") == 1, "v1 in the metrics")
    assert metric(client, "govern_serving_kill_switch") == 0

    flip_kill_switch(deployed.services, True, "hygiene drill")
    ready = client.get("/readyz").json()["models"][MODEL]
    assert ready == {
        "champion_version": 1,
        "answering_version": None,
        "safe_state": True,
        "safe_state_reason": "kill switch on: hygiene drill",
        "kill_switch": "on",
    }
    wait_until(lambda: client.get("/healthz").json()["models"][MODEL]["safe_state"], "liveness to see the switch")
    assert client.get("/healthz").json()["models"][MODEL]["safe_state_reason"] == "kill switch on: hygiene drill"
    wait_until(lambda: metric(client, "govern_serving_served_version") == 0, "0, the safe state, in the metrics")
    assert metric(client, "govern_serving_kill_switch") == 1


def raw_request(url: str, head: str, body_parts: list[bytes] = (), pause: float = 0.0) -> tuple[str, float]:
    """Send `head` and then the body parts over a plain socket; the status line and the seconds it took."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head.encode())
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed: what we are testing
                break
            time.sleep(pause)
        answer = sock.recv(65536).decode(errors="replace")
    return answer.split("\r\n", 1)[0] + "\n" + answer.split("\r\n\r\n", 1)[-1], time.monotonic() - started


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(deployed, api):
    limit, before = deployed.config.serving.max_request_bytes, deployed.decisions.count()
    head = (
        f"POST {DECIDE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
    )
    answer, seconds = raw_request(api.url, head)  # no byte of the 100 MB is ever sent
    assert answer.startswith("HTTP/1.1 413")
    assert f"request body over {limit} bytes (serving.max_request_bytes in governance.yaml); not read" in answer
    assert seconds < 2
    assert deployed.decisions.count() == before


def test_a_streamed_body_is_refused_as_soon_as_it_goes_over_the_limit(deployed, api):
    limit, before = deployed.config.serving.max_request_bytes, deployed.decisions.count()
    head = f"POST {DECIDE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"x" * 16384
    parts = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * (limit // len(chunk) + 200)  # never ended
    answer, _ = raw_request(api.url, head, parts, pause=0.001)
    assert answer.startswith("HTTP/1.1 413") and "not read" in answer
    assert deployed.decisions.count() == before


def test_a_body_within_the_limit_is_decided_whether_declared_or_streamed(deployed, client):
    sent = body(deployed.applications.iloc[5], deployed.model)
    declared = client.post(DECIDE, json=sent)
    streamed = client.post(
        DECIDE,
        content=iter([declared.request.content[:10], declared.request.content[10:]]),
        headers={"content-type": "application/json"},
    )
    for answer in (declared, streamed):
        assert answer.status_code == 200, answer.text
        assert deployed.decisions.get(answer.json()["decision_id"]) is not None


@pytest.mark.parametrize("seq", ["0", "-1", "-99999999999999999999", str(2**63), str(2**64 + 1), "9" * 40, "123456789"])
def test_a_ledger_entry_that_does_not_exist_is_not_found_whatever_its_number(client, seq):
    answer = client.get(f"/ledger/entries/{seq}")
    assert answer.status_code == 404, answer.text
    assert "entry" in answer.json()["detail"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_pages_load_only_what_the_api_serves(client, page):
    html = client.get(page)
    assert html.status_code == 200
    assert not re.search(r"(https?:)?//", html.text), "a URL off this server (a CDN) in the page"
    referenced = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html.text)
    assert len(referenced) >= 3, referenced  # script, style or fonts, favicon, the OpenAPI document
    for url in referenced:
        assert url.startswith("/"), url
        answer = client.get(url)
        assert answer.status_code == 200 and answer.content, url
