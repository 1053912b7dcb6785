"""The asset graph under review: a snapshot of keys, deps, partitions, checks, owners, tags and kinds.

Any lineage change shows up as a diff of tests/snapshots/asset_graph.json.
Regenerate deliberately with `UPDATE_SNAPSHOTS=1 make test`.
"""

import json
import os
from pathlib import Path

import dagster as dg

from governance.config import load_config
from governance_assets.definitions import build_definitions
from tests.conftest import REPO

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_description(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    described = {}
    for asset_key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(asset_key)
        partitions = node.partitions_def
        described[asset_key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": getattr(partitions, "name", None) if partitions else None,
            "checks": sorted(f"{c.name}{' (blocking)' if graph.get_check_spec(c).blocking else ''}"
                             for c in node.check_keys),
            "owners": sorted(node.owners),
            "tags": {k: v for k, v in sorted(node.tags.items()) if not k.startswith("dagster/kind/")},
            "kinds": sorted(node.kinds),
            "group": node.group_name,
        }
    return {"assets": described, "jobs": sorted(j.name for j in defs.resolve_all_job_defs()),
            "sensors": sorted(s.name for s in defs.sensors or []),
            "schedules": sorted(s.name for s in defs.schedules or [])}


def test_asset_graph_matches_the_reviewed_snapshot(settings):
    defs = build_definitions(settings, load_config(REPO / "governance.yaml"))
    current = graph_description(defs)
    if os.environ.get("UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text()), "asset graph changed: review, then UPDATE_SNAPSHOTS=1"


def test_asset_selection_strings_parse(settings):
    """Guards the antlr4 trap: dvc's hydra pin breaks Dagster's selection parser (STACK-NOTES)."""
    defs = build_definitions(settings, load_config(REPO / "governance.yaml"))
    graph = defs.resolve_asset_graph()
    selected = dg.AssetSelection.from_string('key:"credit_scoring/trained_model"+').resolve(graph)
    assert dg.AssetKey(["credit_scoring", "model_card"]) in selected
    assert dg.AssetKey(["credit_scoring", "applications"]) not in selected
    everything = dg.AssetSelection.from_string("*").resolve(graph)
    assert everything == graph.get_all_asset_keys()
