"""Every spec of the code location, as reviewable JSON: assets, checks, jobs, sensors, schedules, resources.

The test compares it with `asset_graph.json` beside this file and fails on any difference; only
`make snapshot` (`python -m tests.snapshots update`) writes the file. Lists are sorted and keys are sorted,
so the same definitions always give the same text.
"""

from __future__ import annotations

import difflib
import json
import tempfile
from pathlib import Path

import dagster as dg

from definitions import build_definitions
from governance.config import load_config
from governance.settings import Settings
from governance_assets.common import asset_code_version
from resources.reports import STORED_AS

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).with_name("asset_graph.json")
KIND_TAG = "dagster/kind/"


def _user(keys) -> list[str]:
    return sorted(key.to_user_string() for key in keys)


def describe_partitions(partitions: dg.PartitionsDefinition | None) -> dict | None:
    if partitions is None:
        return None
    if isinstance(partitions, dg.DynamicPartitionsDefinition):
        return {"dynamic": partitions.name}
    if isinstance(partitions, dg.StaticPartitionsDefinition):
        return {"static": partitions.get_partition_keys()}
    if isinstance(partitions, dg.TimeWindowPartitionsDefinition):
        return {
            "time_window": {
                "cron": partitions.cron_schedule,
                "timezone": partitions.timezone,
                "start": partitions.start.isoformat(),
                "fmt": partitions.fmt,
                "end": partitions.end.isoformat() if partitions.end else None,
            }
        }
    if isinstance(partitions, dg.MultiPartitionsDefinition):
        return {"multi": {dim.name: describe_partitions(dim.partitions_def) for dim in partitions.partitions_defs}}
    return {type(partitions).__name__: str(partitions)}


def describe_automation(condition: dg.AutomationCondition | None) -> str | None:
    """A condition as its label, or as its operator over its operands: `AND(eager, NOT(any_deps_in_progress))`."""
    if condition is None:
        return None
    if condition.get_label():
        return condition.get_label()
    operands = [describe_automation(child) for child in condition.children]
    return f"{condition.name}({', '.join(operands)})" if operands else condition.name


def _where_set(**fields) -> dict:
    return {name: value for name, value in fields.items() if value is not None}


def describe_assets(graph) -> dict:
    described = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        checks = sorted((graph.get_check_spec(c) for c in node.check_keys), key=lambda spec: spec.name)
        described[key.to_user_string()] = {
            "deps": _user(node.parent_keys),
            "partitions": describe_partitions(node.partitions_def),
            "checks": {spec.name: {"blocking": spec.blocking} for spec in checks},
            "owners": sorted(node.owners),
            "tags": {k: v for k, v in sorted(node.tags.items()) if not k.startswith(KIND_TAG)},
            "kinds": sorted(node.kinds),
            "group": node.group_name,
            "resources": _resources(node.assets_def.required_resource_keys),
            **_where_set(
                automation_condition=describe_automation(node.automation_condition),
                code_version=_code_version(node),
                pools=sorted(node.pools) or None,
                io_manager=_io_manager(node),
            ),
        }
    return described


def _code_version(node) -> str | None:
    """The governance code digest by name (its value changes with every edit of the code it covers), any other
    code version as it is."""
    return "asset_code_version()" if node.code_version == asset_code_version() else node.code_version


def _resources(keys) -> list[str]:
    """The resources a definition takes (the IO managers its outputs use are under `io_manager`)."""
    return sorted(key for key in keys if not key.endswith("io_manager"))


def _io_manager(node) -> str | None:
    """Where an asset's output is stored: the IO manager's key and the file the asset names (`stored_as`), or
    the key alone for any IO manager but the code location's default."""
    stored_as = node.metadata.get(STORED_AS)
    if not node.is_materializable or not (stored_as or node.io_manager_key != "io_manager"):
        return None
    return f"{node.io_manager_key}: {stored_as}" if stored_as else node.io_manager_key


def describe_jobs(defs: dg.Definitions) -> dict:
    """Each job with the assets it selects (Dagster's own `__ASSET_JOB`, which selects everything, left out)."""
    return {
        job.name: {
            "selects": _user(job.asset_layer.selected_asset_keys),
            "partitions": describe_partitions(job.partitions_def),
            "tags": dict(sorted(job.tags.items())),
        }
        for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name)
        if not job.name.startswith("__")
    }


def describe_sensors(defs: dg.Definitions) -> dict:
    return {
        sensor.name: _where_set(
            type=sensor.sensor_type.value,
            minimum_interval_seconds=sensor.minimum_interval_seconds,
            default_status=sensor.default_status.value,
            jobs=sorted(target.job_name for target in sensor.targets),
            resources=_resources(sensor.required_resource_keys) or None,
            asset_selection=str(sensor.asset_selection) if sensor.asset_selection is not None else None,
        )
        for sensor in sorted(defs.sensors or [], key=lambda s: s.name)
    }


def describe_schedules(defs: dg.Definitions) -> dict:
    return {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "job": schedule.job_name,
            "default_status": schedule.default_status.value,
        }
        for schedule in sorted(defs.schedules or [], key=lambda s: s.name)
    }


def describe(defs: dg.Definitions) -> dict:
    return {
        "assets": describe_assets(defs.resolve_asset_graph()),
        "jobs": describe_jobs(defs),
        "sensors": describe_sensors(defs),
        "schedules": describe_schedules(defs),
        "resources": {name: type(resource).__name__ for name, resource in sorted((defs.resources or {}).items())},
    }


def current(home: Path) -> dict:
    """The code location the repository's governance.yaml defines, with its state dir at `home` (never written)."""
    config_path = REPO / "governance.yaml"
    return describe(build_definitions(Settings(home=home, config_path=config_path), load_config(config_path)))


def as_text(description: dict) -> str:
    return json.dumps(description, indent=2, sort_keys=True) + "\n"


def difference(recorded: str, now: str) -> str:
    """A unified diff from the reviewed snapshot to the current definitions ('' when they agree)."""
    return "".join(
        difflib.unified_diff(
            recorded.splitlines(keepends=True),
            now.splitlines(keepends=True),
            fromfile="reviewed: tests/snapshots/asset_graph.json",
            tofile="current definitions",
        )
    )


def update() -> str:
    """Write the current description over the snapshot; returns the diff it made."""
    with tempfile.TemporaryDirectory() as home:
        now = as_text(current(Path(home) / "govern"))
    before = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    SNAPSHOT.write_text(now)
    return difference(before, now)
