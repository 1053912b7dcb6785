"""The code location under review: every asset spec, check, job selection, sensor and schedule.

Any change shows up as a diff against tests/snapshots/asset_graph.json, and the test fails until someone has
reviewed it and run `make snapshot` (`python -m tests.snapshots update`). The test never writes the file.
"""

import dagster as dg
import pytest

from definitions import build_definitions
from governance.config import load_config
from governance.settings import Settings
from tests.conftest import REPO
from tests.helpers import small_model, write_config
from tests.snapshots.asset_graph import SNAPSHOT, as_text, current, describe, difference

UPDATE = "review the change, then run `make snapshot` (python -m tests.snapshots update) and commit the file"


def test_the_code_location_matches_the_reviewed_snapshot(settings):
    now = as_text(current(settings.home))
    if not SNAPSHOT.exists():
        pytest.fail(f"no reviewed snapshot at {SNAPSHOT.relative_to(REPO)}: {UPDATE}", pytrace=False)
    changes = difference(SNAPSHOT.read_text(), now)
    if changes:
        pytest.fail(f"the code location differs from the reviewed snapshot:\n{changes}\n{UPDATE}", pytrace=False)


def test_the_snapshot_is_deterministic(settings):
    assert as_text(current(settings.home)) == as_text(current(settings.home.with_name("elsewhere")))


def test_the_snapshot_records_automation_code_version_and_pool_where_set():
    @dg.asset(
        code_version="3",
        pool="candidates",
        automation_condition=dg.AutomationCondition.eager() & ~dg.AutomationCondition.any_deps_in_progress(),
    )
    def governed(): ...

    @dg.asset
    def plain(): ...

    assets = describe(dg.Definitions(assets=[governed, plain]))["assets"]
    assert assets["governed"]["automation_condition"] == "AND(eager, NOT(any_deps_in_progress))"
    assert (assets["governed"]["code_version"], assets["governed"]["pools"]) == ("3", ["candidates"])
    assert not {"automation_condition", "code_version", "pools"} & assets["plain"].keys()


def test_asset_selection_strings_parse(settings):
    """Guards the antlr4 trap: dvc's hydra pin breaks Dagster's selection parser (STACK-NOTES)."""
    defs = build_definitions(settings, load_config(REPO / "governance.yaml"))
    graph = defs.resolve_asset_graph()
    selected = dg.AssetSelection.from_string('key:"credit_scoring/trained_model"+').resolve(graph)
    assert dg.AssetKey(["credit_scoring", "model_card"]) in selected
    assert dg.AssetKey(["credit_scoring", "applications"]) not in selected
    everything = dg.AssetSelection.from_string("*").resolve(graph)
    observed = {k for k in graph.get_all_asset_keys() if k.path[-1] == "serving_state"}  # observable sources
    assert observed and everything == graph.get_all_asset_keys() - observed


def test_zoomed_out_group_names_still_tell_models_and_stages_apart(tmp_path):
    """Zoomed out, Dagster's graph cuts a group's name in the middle to about 17 characters, keeping its start and
    its end, and every model's nodes have the same names: a model named in the middle of its groups' names made
    the stages of model_00 ... model_19 look the same (`model…_monitoring`). The ends of the names must tell
    both apart: the model at one end, the stage at the other."""
    models = [f"model_{i:02d}" for i in range(20)]
    path = write_config(tmp_path / "governance.yaml", {name: small_model() for name in models})
    graph = build_definitions(
        Settings(home=tmp_path / "govern", config_path=path), load_config(path)
    ).resolve_asset_graph()
    groups = {
        (graph.get(key).tags["governance/model"], graph.get(key).tags["governance/stage"]): graph.get(key).group_name
        for key in graph.get_all_asset_keys()
    }
    assert len(set(groups.values())) == len(groups) == 20 * 6
    for stage in {stage for _, stage in groups}:
        ends = {name[-5:] for (_, of), name in groups.items() if of == stage}
        assert len(ends) == 20, f"the {stage} groups of different models end alike: {sorted(ends)}"
    for model in models:
        starts = {name[:5] for (of, _), name in groups.items() if of == model}
        assert len(starts) == 6, f"{model}'s stage groups start alike: {sorted(starts)}"
