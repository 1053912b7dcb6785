"""The governance core stays free of Dagster; keys never enter the repository."""

import ast
import subprocess

from tests.conftest import REPO

WIRING = {"dagster", "dagster_mlflow", "dagster_postgres", "governance_assets", "jobs", "sensors", "resources"}
INTERFACES = {"cli"}  # the command line drives Dagster runs; it is an interface, not the core


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_governance_core_does_not_import_dagster_or_its_wiring():
    offenders = {}
    for path in (REPO / "governance").rglob("*.py"):
        if path.relative_to(REPO / "governance").parts[0] in INTERFACES:
            continue
        bad = _imports(path) & WIRING
        if bad:
            offenders[str(path.relative_to(REPO))] = sorted(bad)
    assert not offenders, offenders


def test_no_private_key_material_is_tracked_by_git():
    # The pattern is written so that this file does not match it.
    tracked = subprocess.run(["git", "-C", str(REPO), "grep", "-l", "-I", "-E", "PRIVATE KEY-{5}"],
                             capture_output=True, text=True)
    assert tracked.stdout.strip() == "", tracked.stdout
