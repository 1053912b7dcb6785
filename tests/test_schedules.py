"""Scheduled retraining spreads over a window: fifty models never queue their candidates in the same minute."""

from __future__ import annotations

from collections import Counter

import pytest

from definitions import build_definitions
from governance.config import ConfigError, load_config
from governance.settings import Settings
from tests.helpers import small_model, write_config

FIFTY = [f"model_{i:02d}" for i in range(50)]


def minute_of_day(cron: str) -> int:
    minute, hour, *_ = cron.split()
    return int(hour) * 60 + int(minute)


def test_fifty_models_retrain_spread_over_the_window_never_all_at_once(tmp_path):
    path = write_config(tmp_path / "governance.yaml", {name: small_model() for name in FIFTY})
    settings = Settings(home=tmp_path / "govern", config_path=path)
    defs = build_definitions(settings, load_config(path))
    schedules = {s.name: s.cron_schedule for s in defs.schedules}
    assert len(schedules) == 50
    at = {name: minute_of_day(cron) for name, cron in schedules.items()}
    assert all(3 * 60 <= minute < 3 * 60 + 120 for minute in at.values())  # "0 3 * * 1", 120 minutes
    assert all(cron.endswith(" * * 1") for cron in schedules.values())  # still Mondays
    busiest = Counter(at.values()).most_common(1)[0][1]
    assert busiest <= 3 and len(set(at.values())) >= 35, sorted(at.values())
    again = build_definitions(settings, load_config(path))  # deterministic: the same minute every load
    assert {s.name: s.cron_schedule for s in again.schedules} == schedules


def test_a_spread_of_zero_keeps_the_cron_and_a_cron_that_cannot_be_spread_is_refused(tmp_path):
    exact = small_model(monitoring={"retrain_cron": "30 2 * * *", "retrain_spread_minutes": 0})
    path = write_config(tmp_path / "exact.yaml", {"credit_scoring": exact})
    assert load_config(path).model("credit_scoring").retraining_cron == "30 2 * * *"
    for cron, spread, says in [
        ("*/5 * * * *", 60, "needs a fixed minute and hour"),
        ("0 23 * * 1", 120, "would cross midnight"),
    ]:
        bad = small_model(monitoring={"retrain_cron": cron, "retrain_spread_minutes": spread})
        with pytest.raises(ConfigError, match=says):
            load_config(write_config(tmp_path / "bad.yaml", {"credit_scoring": bad}))
