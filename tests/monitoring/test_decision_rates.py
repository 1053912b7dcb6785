"""Decision-rate drift on real decisions: a window whose approvals collapse calls for retraining, healthy windows do
not, and the risk tier sets the margin; the monitoring report and the model card show it (real scores, real
Evidently for the report, real Cedar)."""

from __future__ import annotations

import json
from pathlib import Path

from governance.data.generator import generate_applications
from governance.monitoring.decision_rates import FIGURE
from governance.monitoring.monitor import monitor_for
from governance.monitoring.report import write_report
from governance.monitoring.watch import card_watch
from governance.monitoring.windows import LIVE, read_window
from tests.monitoring.conftest import MODEL, Monitored

RULE = "monitoring.decision_rate_drift"
CONCERN = ("decision_rate_drift",)


def _send_with_income(monitored: Monitored, factor: float, seed: int) -> str:
    """One window of baseline applicants whose incomes are multiplied by `factor`; its key."""
    frame = generate_applications(monitored.model.monitoring.window_size, seed=seed)
    frame["annual_income"] = (frame["annual_income"] * factor).round(-2)
    answers = monitored.traffic.decide(frame)
    log = monitor_for(monitored.settings).log
    return f"{log.get(answers[0]['decision_id']).seq}-{log.get(answers[-1]['decision_id']).seq}"


def _window(monitored: Monitored, key: str):
    first, last = (int(seq) for seq in key.split("-"))
    return read_window(monitor_for(monitored.settings).log, MODEL, first, last)


def _card(monitored: Monitored, risk_tier: str) -> dict:
    reports = monitored.settings.model_dir(MODEL, f"{MODEL}-v2")
    return card_watch(
        monitor_for(monitored.settings).policies(),
        monitored.model.model_copy(update={"risk_tier": risk_tier}),
        f"{MODEL}-v2",
        json.loads((reports / "explainability.json").read_bytes()),
        json.loads((reports / "performance.json").read_bytes()),
    )


def test_healthy_windows_call_for_nothing(monitored: Monitored):
    for seed in range(7100, 7104):
        monitored.send(seed=seed)
    result = monitored.tick("score_drift")
    assert result.run_requests == [], result.skip_reason
    figures = [event.metadata[FIGURE].value for event in result.asset_events]
    assert len(figures) == 4 and max(figures) < 0.05, figures


def test_approvals_collapsing_call_for_retraining_and_the_report_shows_it(monitored: Monitored, tmp_path: Path):
    monitored.send(seed=7200)
    key = _send_with_income(monitored, 0.3, seed=7201)  # approvals fall from 57% on the test set to about 21%
    (request,) = monitored.tick("score_drift").run_requests
    assert request.tags["governance/window"] == key

    monitor = monitor_for(monitored.settings)
    report = write_report(monitor, monitored.model, _window(monitored, key), LIVE, tmp_path / "report", {})
    recorded = json.loads(report.path.read_bytes())
    (measured,) = [m for m in recorded["measurements"] if m["concern"] == "decision_rate_drift"]
    approve = measured["details"]["outcomes"]["approve"]
    assert approve["shift_ci"][1] < -0.25, measured["summary"]  # approvals fell by more than 25 points, surely
    assert measured["summary"].startswith("decisions approve ")
    fired = {f["rule"]: f for f in recorded["retrain"]["findings"]}
    (condition,) = fired[RULE]["conditions"]
    assert condition.startswith(f"{FIGURE} = ") and condition.endswith("(fires when > 0.0500)")
    quiet_from, _ = next(
        o["quiet"] for o in _card(monitored, "high")["decisions"]["outcomes"] if o["outcome"] == "approve"
    )
    assert approve["share"] < quiet_from  # the card said a window this far down would call for retraining


def test_the_risk_tier_sets_the_margin(monitored: Monitored):
    key = _send_with_income(monitored, 0.6, seed=7300)  # approvals fall by about 17 points
    window = _window(monitored, key)
    monitor = monitor_for(monitored.settings)
    high, _ = monitor.judge(monitored.model, window, LIVE, CONCERN)
    low, _ = monitor.judge(monitored.model.model_copy(update={"risk_tier": "low"}), window, LIVE, CONCERN)
    assert 0.05 < high.attributes[FIGURE] < 0.15, high.summary()
    assert [f.rule for f in high.retrain.findings] == [RULE]
    assert not low.alert, low.summary()
    ranges = {tier: _card(monitored, tier)["decisions"]["outcomes"] for tier in ("high", "low")}
    for strict, lenient in zip(ranges["high"], ranges["low"]):
        assert strict["outcome"] == lenient["outcome"]
        assert lenient["quiet"][0] <= strict["quiet"][0] <= strict["reference_share"] <= strict["quiet"][1]
        assert strict["quiet"][1] <= lenient["quiet"][1]
    assert ranges["low"][0]["quiet"][0] < ranges["high"][0]["quiet"][0]  # the low tier tolerates more change
