"""The API through a PostgreSQL outage: a TCP proxy in front of the database is stopped under load.

Every request gets an answer: a decision that is in the decision log, or 503 with a fixed text (never the
driver's, with its host and port). Liveness stays up, readiness says the databases are unreachable, and
when the proxy is back decisions resume without a restart."""

from __future__ import annotations

import json
import threading
import time

import httpx
from sqlalchemy import make_url

from governance.control import ControlStore, KillSwitch
from governance.db import POSTGRES_CONNECT_TIMEOUT_SECONDS
from governance.decisions import DecisionLog
from governance.serving import create_app
from governance.serving.app import DATABASE_UNAVAILABLE, NOT_LOGGED
from governance.serving.champion import KILL_SWITCH_UNREADABLE, ChampionFollower
from governance.serving.decide import Application, DecisionMaker
from tests.helpers import RunningAPI, wait_until
from tests.proxy import TcpProxy
from tests.serving.conftest import MODEL, bearer, body, on_database

DECIDE = f"/models/{MODEL}/decisions"


class Load:
    """Clients posting decisions until stopped; every answer kept as (status, body, seconds into the load)."""

    def __init__(self, url: str, sent: dict, headers: dict, clients: int = 4) -> None:
        self.url, self.sent, self.headers, self.answers = url, sent, headers, []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        self._started = time.monotonic()

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=30) as client:
            while not self._stop.is_set():
                answer = client.post(DECIDE, json=self.sent)
                self.answers.append((answer.status_code, answer.json(), time.monotonic() - self._started))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def test_every_request_is_answered_and_logged_or_refused_through_an_outage(deployed, postgres_url):
    database = make_url(postgres_url)
    proxy = TcpProxy((database.host, database.port or 5432))
    proxy.start()
    proxied = database.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = on_database(deployed.settings, proxied)  # v1 deployed there; MLflow stays where it is
    internals = ("127.0.0.1", str(proxy.port), str(database.port), "psycopg", "connection", "SELECT")
    try:
        with (
            RunningAPI(create_app(settings, deployed.config, poll_seconds=0.2)) as api,
            httpx.Client(base_url=api.url, headers=bearer(settings), timeout=30) as client,
            Load(api.url, body(deployed.applications.iloc[7], deployed.model), client.headers) as load,
        ):
            wait_until(lambda: any(status == 200 for status, *_ in load.answers), "decisions before the outage")
            proxy.stop()
            outage = time.monotonic() - load._started
            wait_until(
                lambda: any(status == 503 and at > outage for status, _, at in load.answers),
                "a refused decision in the outage",
            )
            assert client.get("/healthz").status_code == 200
            during = {path: client.get(path) for path in ("/readyz", f"/models/{MODEL}", "/ledger/entries/1")}
            assert {path: answer.status_code for path, answer in during.items()} == dict.fromkeys(during, 503)
            assert during["/readyz"].json()["ready"] is False
            assert during[f"/models/{MODEL}"].json() == {"error": DATABASE_UNAVAILABLE}
            for answer in during.values():
                assert not any(text in answer.text for text in internals), answer.text
            proxy.start()
            back = time.monotonic() - load._started
            wait_until(
                lambda: any(status == 200 and at > back for status, _, at in load.answers),
                "decisions again, without a restart",
                timeout=15,
            )
            assert client.get("/readyz").json()["ready"] is True
    finally:
        proxy.stop()

    statuses = {status for status, *_ in load.answers}
    assert statuses == {200, 503}, statuses  # an answer for every request: never a 500
    log = DecisionLog(postgres_url)
    for status, answer, _ in load.answers:
        if status == 200:
            assert log.get(answer["decision_id"]) is not None, "a decision answered without its log row"
        else:
            assert answer == {"error": NOT_LOGGED}
    log.engine.dispose()


def test_an_unreadable_kill_switch_counts_as_on_and_its_error_stays_in_the_server_log(deployed, postgres_url):
    """The control store is out, the decision log is not (the embedded default keeps them apart): the answer
    is the safe state, logged, and neither answer nor log row carries the driver's error."""
    database = make_url(postgres_url)
    proxy = TcpProxy((database.host, database.port or 5432))
    proxy.start()
    control = ControlStore(database.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    proxy.stop()
    follower = ChampionFollower(deployed.settings, deployed.model, deployed.registry, deployed.control)
    follower.refresh()
    sent = body(deployed.applications.iloc[9], deployed.model, protected=False)
    [answer] = DecisionMaker(deployed.model, follower, control, deployed.decisions).decide([Application(sent, None)])
    assert answer["outcome"] == "refer" and answer["safe_state"] is True
    assert answer["safe_state_reason"] == f"kill switch on: {KILL_SWITCH_UNREADABLE}"
    logged = deployed.decisions.get(answer["decision_id"])
    assert logged.kill_switch is True and logged.safe_state_reason == answer["safe_state_reason"]
    assert str(proxy.port) not in json.dumps(answer)


def test_a_database_that_does_not_answer_costs_a_request_seconds_not_minutes(deployed, postgres_url):
    """A dropped network: connections open but nothing answers. Each new connection gives up after the connect
    timeout, so a decision request is refused (503) in seconds; decisions resume when the network is back."""
    database = make_url(postgres_url)
    proxy = TcpProxy((database.host, database.port or 5432))
    proxy.start()
    proxied = database.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = on_database(deployed.settings, proxied)
    sent = body(deployed.applications.iloc[11], deployed.model)
    try:
        with (
            RunningAPI(create_app(settings, deployed.config, poll_seconds=0.2)) as api,
            httpx.Client(base_url=api.url, headers=bearer(settings), timeout=60) as client,
        ):
            assert client.post(DECIDE, json=sent).status_code == 200
            proxy.hang()
            started = time.monotonic()
            refused = client.post(DECIDE, json=sent)
            assert refused.status_code == 503 and refused.json() == {"error": NOT_LOGGED}
            assert time.monotonic() - started < 4 * POSTGRES_CONNECT_TIMEOUT_SECONDS  # kill switch read, then log
            proxy.stop()
            proxy.start()
            wait_until(
                lambda: client.post(DECIDE, json=sent).status_code == 200,
                "decisions once the network is back",
                timeout=30,
            )
    finally:
        proxy.stop()


def test_unreadable_deployment_records_keep_the_champion_and_their_error_stays_in_the_server_log(
    deployed, postgres_url
):
    database = make_url(postgres_url)
    proxy = TcpProxy((database.host, database.port or 5432))
    proxy.start()
    proxied = database.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = on_database(deployed.settings, proxied)
    control = ControlStore.for_settings(settings)
    follower = ChampionFollower(settings, deployed.model, deployed.registry, control)
    assert follower.refresh().served.version == 1
    proxy.stop()  # the deployment records cannot be read now
    assert follower.refresh().served.version == 1  # the last verified champion stays
    assert follower.problem == f"cannot read or verify the signed record of {MODEL!r} (the server log says why)"
    assert follower.in_force(KillSwitch(model=MODEL, disabled=False)).disabled  # unverifiable: held in the safe state
