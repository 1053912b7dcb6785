"""End to end with the Dagster daemon running: a harmful window in the decision log is contained, with nobody
evaluating anything by hand."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from governance import events
from governance.timestamps import parse_utc
from governance_assets.monitoring.daemon import DagsterDaemon
from jobs.monitoring import IN_FLIGHT, remediation_job_name
from tests.monitoring.conftest import MODEL, Monitored

pytestmark = pytest.mark.slow
DEADLINE_SECONDS = 120


def test_the_daemon_s_sensors_and_remediation_roll_back_a_harmful_champion(monitored: Monitored, tmp_path):
    log = tmp_path / "daemon.log"
    with DagsterDaemon(monitored.settings, log) as daemon:
        monitored.roll_back_by_hand(1)  # while the daemon starts: v1 is harmful on baseline traffic
        window = monitored.send(seed=100)
        complete = parse_utc(window[-1]["ts"])
        services = monitored.services
        deadline = time.monotonic() + DEADLINE_SECONDS
        while services.registry.champion(MODEL) != 2:
            assert daemon.running, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no rollback within {DEADLINE_SECONDS} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        move = services.control.deployments(MODEL, "completed")[-1]
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
    assert len(monitored.services.control.deployments(MODEL)) == 4  # two deployments, paul's and one rollback
    requested = [tick for state in monitored.instance.all_instigator_state() if state.name.startswith(MODEL)
                  for tick in monitored.instance.get_ticks(state.instigator_origin_id, state.selector_id)
                  if tick.run_ids]
    assert {t.instigator_name for t in requested} & {f"{MODEL}_data_drift", f"{MODEL}_score_drift"}
    assert not daemon.running
