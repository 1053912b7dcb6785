"""Following the signed record's champion and kill switch without a restart, and the safe state. What an alias
moved, a kill-switch row edited or an artifact changed outside governance does to serving is in the attack suite
(tests/attacks/test_production_moves.py, test_kill_switch.py, test_artifacts.py), on both backends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import httpx
import pandas as pd
import pytest

from governance import training
from tests.helpers import wait_until
from tests.serving.conftest import MODEL, body, flip_kill_switch, roll_back

DECIDE = f"/models/{MODEL}/decisions"


def decide(client: httpx.Client, deployed, row: int = 0) -> dict:
    response = client.post(DECIDE, json=body(deployed.applications.iloc[row], deployed.model))
    assert response.status_code == 200, response.text
    return response.json()


def score(deployed, version: int, row: int = 0) -> float:
    frame = pd.DataFrame([body(deployed.applications.iloc[row], deployed.model, protected=False)])
    return float(training.score(deployed.pipelines[version], deployed.model, frame)[0])


def assert_safe_state(answer: dict, why: str) -> None:
    assert answer["outcome"] == "refer" and answer["safe_state"] is True
    assert answer["score"] is None and answer["version"] is None and answer["reasons"] == []
    assert why in answer["safe_state_reason"]


def test_kill_switch_turns_every_answer_into_refer_within_a_second(deployed, client):
    risky = int(training.score(deployed.pipelines[1], deployed.model, deployed.applications).argmax())
    assert decide(client, deployed, risky)["outcome"] == "decline"
    started = time.monotonic()
    flip_kill_switch(deployed.services, True, "fairness alert")  # signed, authorised, ledgered
    wait_until(lambda: decide(client, deployed, risky)["outcome"] == "refer", "the first refer", timeout=1.0)
    assert time.monotonic() - started < 1.0
    answer = decide(client, deployed, risky)
    assert_safe_state(answer, "kill switch on: fairness alert")
    logged = deployed.decisions.get(answer["decision_id"])
    assert (logged.outcome, logged.kill_switch, logged.score, logged.version) == ("refer", True, None, None)
    assert logged.safe_state_reason == "kill switch on: fairness alert"
    status = client.get(f"/models/{MODEL}").json()
    assert status["safe_state"] is True and status["kill_switch"]["reason"] == "fairness alert"

    flip_kill_switch(deployed.services, False, "alert resolved")
    wait_until(lambda: decide(client, deployed, risky)["outcome"] == "decline", "scoring to resume", timeout=1.0)


def test_champion_changes_are_followed_without_a_restart(deployed, client):
    assert decide(client, deployed)["score"] == pytest.approx(score(deployed, 1), abs=1e-12)
    for version in (2, 1):  # signed rollbacks to v2, deployed before, and back to v1
        roll_back(deployed.services, version, f"back to v{version}")
        wait_until(
            lambda: decide(client, deployed)["version"] == version,  # noqa: B023 (waited for in this iteration)
            f"v{version} to be served",
        )
        answer = decide(client, deployed)
        assert answer["score"] == pytest.approx(score(deployed, version), abs=1e-12)
        assert deployed.decisions.get(answer["decision_id"]).version == version
        assert client.get(f"/models/{MODEL}").json()["served_version"] == version
    assert score(deployed, 1) != score(deployed, 2)


def test_under_load_while_the_kill_switch_flips_nothing_fails_and_every_answer_is_logged(deployed, api):
    before = deployed.decisions.last_seq(MODEL)
    stop = threading.Event()
    flips = []

    responses: list[httpx.Response] = []

    def followed(since: int) -> bool:
        return any(not r.json()["safe_state"] for r in responses[since:])

    def flip() -> None:
        disabled = False
        while not stop.wait(0.1):
            disabled = not disabled
            since = len(responses)
            flip_kill_switch(deployed.services, disabled, "load test flip")  # signed, as in production
            flips.append(disabled)
            # serving lifts the switch once its follower has verified the signed enable (the safe side until
            # then): hold each enable until it did, so a loaded machine cannot make every enable too short
            deadline = time.monotonic() + 10
            while not disabled and not stop.is_set() and not followed(since) and time.monotonic() < deadline:
                time.sleep(0.05)
        flip_kill_switch(deployed.services, False, "load test over")

    bodies = [body(row, deployed.model) for _, row in deployed.applications.head(64).iterrows()]

    async def load(seconds: float) -> list[httpx.Response]:
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=api.url, timeout=10, limits=httpx.Limits(max_connections=32)) as client:

            async def worker(n: int) -> None:
                i = n
                # at least `seconds`, and under load until ten signed flips were made (each is signed, authorised
                # by Cedar and ledgered, so it takes longer than a row write)
                while (time.monotonic() < deadline or len(flips) < 10) and time.monotonic() < deadline + 30:
                    responses.append(await client.post(DECIDE, json=bodies[i % len(bodies)]))
                    i += 32

            await asyncio.gather(*(worker(n) for n in range(32)))
        return responses

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        responses = asyncio.run(load(2.5))
    finally:
        stop.set()
        flipper.join()

    assert {r.status_code for r in responses} == {200}
    answers = [r.json() for r in responses]
    safe = [a for a in answers if a["safe_state"]]
    scored = [a for a in answers if not a["safe_state"]]
    assert safe and len(flips) >= 10
    assert scored, Counter(a["safe_state_reason"] for a in safe)  # why nothing was scored, if so
    assert all(a["outcome"] == "refer" and "kill switch on" in a["safe_state_reason"] for a in safe)
    assert all(a["version"] == 1 and a["score"] is not None for a in scored)
    logged = deployed.decisions.window(MODEL, before, limit=len(answers) + 1000)
    assert len(logged) == len(answers)
    assert {d.decision_id: d.outcome for d in logged} == {a["decision_id"]: a["outcome"] for a in answers}
    assert {d.decision_id for d in logged if d.kill_switch} == {a["decision_id"] for a in safe}
