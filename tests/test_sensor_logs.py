"""A skipped tick says why in the tick's log, not only in the hover text of the skip (the daemon keeps the
sensor's log lines with the tick; here the evaluation's log goes to stderr as Dagster's console logger)."""

import dagster as dg

from resources import governance_resources
from sensors.approvals import APPROVALS
from tests.helpers import SMALL_CONFIG, Lifecycle


def test_the_approvals_sensor_logs_why_it_skipped(tmp_path, capfd):
    life = Lifecycle(tmp_path / "govern", SMALL_CONFIG)
    with dg.build_sensor_context(instance=life.instance, resources=governance_resources(life.settings)) as context:
        capfd.readouterr()
        result = life.defs.resolve_sensor_def(APPROVALS)(context)
    assert result.skip_reason.skip_message.startswith(
        "no approval to launch; credit_scoring: serving state now no verified champion"
    )
    assert result.skip_reason.skip_message in capfd.readouterr().err
