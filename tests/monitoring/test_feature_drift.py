"""Drift judged by what it does to decisions: one important feature moving strongly is enough to retrain, the
same move of a feature the champion hardly uses is not (default policy, real Evidently, real Cedar)."""

from __future__ import annotations

import json

import pytest

from governance import events
from governance.data.generator import generate_applications
from governance.monitoring.monitor import monitor_for
from governance.monitoring.watch import card_watch
from tests.monitoring.conftest import Monitored

RULE = "monitoring.important_feature_drift"


def _numeric_by_importance(monitored: Monitored) -> list[str]:
    """The champion's numeric features, most important first (its sealed explainability report)."""
    reference = monitor_for(monitored.settings).references.get(monitored.model, 2)
    assert reference.importance is not None, reference.importance_problem
    contract = monitored.model.contract
    numeric = [f for f in monitored.model.feature_columns if contract[f].kind != "category" and not contract[f].values]
    return sorted(numeric, key=lambda f: reference.importance[f]["rank"])


def _send_shifted(monitored: Monitored, feature: str, seed: int) -> None:
    """One window of baseline applications with `feature` moved up by one of its standard deviations."""
    frame = generate_applications(monitored.model.monitoring.window_size, seed=seed)
    frame[feature] = frame[feature] + frame[feature].std()
    monitored.traffic.decide(frame)


@pytest.mark.parametrize("which, alerts", [("most important", True), ("least important", False)])
def test_a_one_sd_shift_alerts_when_the_feature_matters(monitored: Monitored, which: str, alerts: bool):
    ranked = _numeric_by_importance(monitored)
    feature = ranked[0] if which == "most important" else ranked[-1]
    _send_shifted(monitored, feature, seed=900)

    result = monitored.tick("data_drift")
    message = result.skip_reason.skip_message if result.skip_reason else ""
    assert bool(result.run_requests) is alerts, message
    if alerts:
        report = monitored.run(result.run_requests[0])
        assert report.success
        retrain = monitored.ledger(events.RemediationDecided)[-1].judgement["retrain"]
        fired = {f["rule"]: f for f in retrain["findings"]}
        assert retrain["allowed"] and RULE in fired
        assert any(c.startswith(f"{feature}: drift_distance = ") for c in fired[RULE]["conditions"])
        assert "monitoring.data_drift" not in fired  # one feature of 17 is far from the share rule's 30%
    else:
        assert (
            message.split(";")[0].startswith("credit_scoring: credit_scoring-v2 window") and "within policy" in message
        ), message
        assert RULE not in message


def test_the_card_says_which_features_alone_would_call_for_retraining(monitored: Monitored):
    """The model card's monitoring section: the champion's top feature is watched from the high tier's distance,
    its least important is not watched by itself, and the window rules are quoted with their thresholds."""
    settings, model = monitored.settings, monitored.model
    reports = settings.model_dir(model.name, "credit_scoring-v2")
    explained = json.loads((reports / "explainability.json").read_bytes())
    performance = json.loads((reports / "performance.json").read_bytes())
    watch = card_watch(monitor_for(settings).policies(), model, "credit_scoring-v2", explained, performance)
    by_feature = {row["feature"]: row for row in watch["features"]}
    assert by_feature[explained["importance"][0]["feature"]]["fires_from"] == pytest.approx(0.3)
    assert by_feature[explained["importance"][-1]["feature"]]["fires_from"] is None
    assert {"rule": "monitoring.data_drift", "action": "retrain", "fires_when": ["drift_share >= 0.3000"]} in [
        {k: r[k] for k in ("rule", "action", "fires_when")} for r in watch["rules"]
    ]
