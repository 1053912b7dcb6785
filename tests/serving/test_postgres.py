"""The production configuration: control state and decision log on PostgreSQL."""

from __future__ import annotations

import dataclasses

import httpx

from governance.control import ControlStore
from governance.decisions import DecisionLog
from governance.serving import create_app
from tests.helpers import RunningAPI, wait_until
from tests.serving.conftest import MODEL, body, deploy


def test_decisions_and_the_kill_switch_on_postgresql(deployed, postgres_url):
    settings = dataclasses.replace(deployed.settings, database_url=postgres_url)  # MLflow stays where it is
    control, decisions = ControlStore.for_settings(settings), DecisionLog.for_settings(settings)
    deploy(control, deployed.versions[1])
    sent = body(deployed.applications.iloc[3], deployed.model)
    with RunningAPI(create_app(settings, deployed.config, poll_seconds=0.2)) as api, \
            httpx.Client(base_url=api.url) as client:
        scored = client.post(f"/models/{MODEL}/decisions", json=sent).json()
        assert scored["version"] == 1 and not scored["safe_state"]
        control.set_kill_switch(MODEL, True, "postgres drill", "ops", "c" * 64)
        wait_until(lambda: client.post(f"/models/{MODEL}/decisions", json=sent).json()["safe_state"],
                   "the kill switch on PostgreSQL", timeout=1.0)
    assert decisions.count(MODEL) >= 2
    assert decisions.get(scored["decision_id"]).score == scored["score"]
    assert deployed.decisions.get(scored["decision_id"]) is None  # nothing went to the embedded SQLite log
