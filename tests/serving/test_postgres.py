"""The production configuration: control state and decision log on PostgreSQL."""

from __future__ import annotations

import httpx

from governance.decisions import DecisionLog
from governance.release.services import Services
from governance.serving import create_app
from tests.helpers import RunningAPI, wait_until
from tests.serving.conftest import MODEL, bearer, body, flip_kill_switch, on_database


def test_decisions_and_the_kill_switch_on_postgresql(deployed, postgres_url):
    settings = on_database(deployed.settings, postgres_url)  # v1 deployed there; MLflow stays where it is
    decisions = DecisionLog.for_settings(settings)
    sent = body(deployed.applications.iloc[3], deployed.model)
    with (
        RunningAPI(create_app(settings, deployed.config, poll_seconds=0.2)) as api,
        httpx.Client(base_url=api.url, headers=bearer(settings)) as client,
    ):
        scored = client.post(f"/models/{MODEL}/decisions", json=sent).json()
        assert scored["version"] == 1 and not scored["safe_state"]
        flip_kill_switch(Services(settings), True, "postgres drill")
        wait_until(
            lambda: client.post(f"/models/{MODEL}/decisions", json=sent).json()["safe_state"],
            "the kill switch on PostgreSQL",
            timeout=1.0,
        )
    assert decisions.count(MODEL) >= 2
    assert decisions.get(scored["decision_id"]).score == scored["score"]
    assert deployed.decisions.get(scored["decision_id"]) is None  # nothing went to the embedded SQLite log
