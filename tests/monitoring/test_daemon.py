"""End to end with the Dagster daemon running: a harmful window in the decision log is contained, with nobody
evaluating anything by hand."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import dagster as dg
import pytest

from governance import events
from governance.timestamps import parse_utc
from jobs.monitoring import IN_FLIGHT, remediation_job_name
from programs.daemon import DagsterDaemon
from tests.monitoring.conftest import MODEL, Monitored
from tests.monitoring.support import monitored_config

pytestmark = pytest.mark.slow
DEADLINE_SECONDS = 120


def test_the_daemon_s_sensors_and_remediation_roll_back_a_harmful_champion(monitored: Monitored, tmp_path):
    log = tmp_path / "daemon.log"
    with DagsterDaemon(monitored.settings, log) as daemon:
        window = monitored.send(seed=100, drift=1.0)  # v1's population: v2 drifts severely, v1 passes
        complete = parse_utc(window[-1]["ts"])
        services = monitored.services
        deadline = time.monotonic() + DEADLINE_SECONDS
        # the rollback's row completes after the alias moves: wait for the row, the end of the move
        while (move := services.control.deployments(MODEL, "completed")[-1]).kind != "rollback":
            assert daemon.running, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no rollback within {DEADLINE_SECONDS} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        assert services.registry.champion(MODEL) == 1
        took = (parse_utc(move.finished_at) - complete).total_seconds()
        print(f"rolled back {took:.1f} s after the harmful window was complete")
        assert (move.kind, move.actor) == ("rollback", "system")
        remediation_runs = dg.RunsFilter(job_name=remediation_job_name(MODEL))
        while any(r.status in IN_FLIGHT for r in monitored.instance.get_runs(remediation_runs)):
            assert time.monotonic() < deadline, "a remediation run did not finish"
            time.sleep(0.2)
        runs = monitored.instance.get_runs(remediation_runs)
        assert runs and all(r.tags["governance/window"] == "1-500" and r.is_success for r in runs)
    remediations = monitored.ledger(events.RemediationDecided)
    acted = [r for r in remediations if r.actions]
    assert len(acted) == 1 and acted[0].actions[0] == "rollback" and acted[0].window == "1-500"
    # another sensor's run for the same window, if the daemon started one, found nothing left to do
    assert all("nothing to do" in " ".join(r.notes) for r in remediations if not r.actions)
    assert len(monitored.services.control.deployments(MODEL)) == 3  # two deployments and one rollback
    requested = [
        tick
        for state in monitored.instance.all_instigator_state()
        if state.name.startswith("monitoring_")
        for tick in monitored.instance.get_ticks(state.instigator_origin_id, state.selector_id)
        if tick.run_ids
    ]
    assert {t.instigator_name for t in requested} & {"monitoring_data_drift", "monitoring_score_drift"}
    assert not daemon.running


def test_the_sensors_tick_at_the_configured_interval(monitored: Monitored, tmp_path):
    """With `check_interval_seconds: 5` (the daemon's own loop), each monitoring sensor ticks about every 5 s,
    not every other loop (10 s, as it did with the interval passed to Dagster as is)."""
    settings = replace(
        monitored.settings, config_path=monitored_config(tmp_path / "governance.yaml", check_interval_seconds=5)
    )
    settings.record_config(replace=True)  # as `govern init --config` points the state dir at this config
    log = tmp_path / "daemon.log"
    sensor = "monitoring_data_drift"
    with DagsterDaemon(settings, log) as daemon:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(_tick_times(monitored.instance, sensor)) < 7:
            assert daemon.running, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (
                f"fewer than 7 ticks in {DEADLINE_SECONDS} s:\n{log.read_text()[-3000:]}"
            )
            time.sleep(0.5)
    ticks = _tick_times(monitored.instance, sensor)
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:])]
    print(
        f"{sensor} ticked every {statistics.mean(gaps):.2f} s on average (gaps {', '.join(f'{g:.1f}' for g in gaps)})"
    )
    assert statistics.mean(gaps) < 6.0, gaps  # a skipped loop makes a 10 s gap


def _tick_times(instance: dg.DagsterInstance, sensor: str) -> list[float]:
    states = [s for s in instance.all_instigator_state() if s.name == sensor]
    return sorted(t.timestamp for s in states for t in instance.get_ticks(s.instigator_origin_id, s.selector_id))
