"""The release sensors (`approvals`, `candidate_requests`), one each for every governed model: a tick visits each
model from its own position in the cursor, one model's unreadable position holds back no other model, and a tick
out of time resumes with the next model. Three models configured, nothing trained."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from governance.fleet import ModelCursors, take_turns
from resources import governance_resources
from sensors.approvals import APPROVALS
from sensors.requests import CANDIDATE_REQUESTS
from tests.helpers import Lifecycle, small_model, write_config

MODELS = ("model_a", "model_b", "model_c")


@pytest.fixture(scope="module")
def life(tmp_path_factory) -> Lifecycle:
    root = tmp_path_factory.mktemp("release_sensors")
    return Lifecycle(root / "govern", write_config(root / "governance.yaml", {m: small_model() for m in MODELS}))


def tick(life: Lifecycle, sensor: str, cursor: str | None = None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=life.instance, cursor=cursor, resources=governance_resources(life.settings)
    ) as context:
        return life.defs.resolve_sensor_def(sensor)(context)


def test_one_tick_visits_every_model_from_its_own_position(life):
    approvals = tick(life, APPROVALS)
    assert sorted(e.asset_key for e in approvals.asset_events) == [dg.AssetKey([m, "serving_state"]) for m in MODELS]
    assert sorted(json.loads(approvals.cursor)["models"]) == list(MODELS)
    assert not tick(life, APPROVALS, approvals.cursor).asset_events  # each model's serving state as observed
    requests = tick(life, CANDIDATE_REQUESTS)
    assert json.loads(requests.cursor) == {"models": {m: 0.0 for m in MODELS}, "resume": None}


def test_a_model_s_unreadable_position_holds_back_no_other_model(life):
    stored = json.loads(tick(life, APPROVALS).cursor)
    stored["models"]["model_b"] = 57  # not an approvals position
    stored["models"]["retired"] = {"ledger_seq": 3, "serving_state": None}  # a model no longer configured
    result = tick(life, APPROVALS, json.dumps(stored))
    assert "model_b: cursor position 57 is not an approvals position" in result.skip_reason.skip_message
    assert json.loads(result.cursor)["models"] == {name: stored["models"][name] for name in MODELS}


@pytest.mark.parametrize("sensor", [APPROVALS, CANDIDATE_REQUESTS])
def test_a_cursor_the_sensor_did_not_write_is_refused_with_a_message(life, sensor):
    own_sensor_s = '{"ledger_seq": 57, "serving_state": null}'  # what a model's own approvals sensor kept
    result = tick(life, sensor, own_sensor_s)
    assert not result.run_requests and result.cursor is None
    assert "is not this sensor's cursor" in result.skip_reason.skip_message


def test_a_tick_out_of_time_resumes_with_the_next_model(life):
    models = list(life.config.models.values())
    first = take_turns(models, None, lambda model: model.name, budget_seconds=0.0)
    assert [name for _, name in first.visits] == ["model_a"] and first.resume == "model_b"
    cursor = ModelCursors({"model_a": 1, "model_c": 3}).after(models, first, {"model_a": 2})
    assert cursor == ModelCursors({"model_a": 2, "model_c": 3}, "model_b")
    rest = take_turns(models, cursor.resume, lambda model: model.name)
    assert [name for _, name in rest.visits] == ["model_b", "model_c", "model_a"] and rest.resume is None
