"""Boundaries a reader can trust: the core knows no Dagster, the wiring packages form no cycle, keys stay
out of the repository.

Imports are read from the source (every `import`, at module level or inside a function), so a lazy
import counts like any other.
"""

import ast
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

CORE = "governance"
# The wiring: every first-party package besides the core, and Dagster's own libraries.
FIRST_PARTY = {p.name for p in REPO.iterdir() if (p / "__init__.py").exists()} - {CORE, "tests"}
WIRING_PACKAGES = ("governance_assets", "jobs", "sensors", "resources")

# Programs that drive Dagster but are not assets (the demo, `govern status`, the Dagster instance of a state
# dir) still live in governance_assets, and `govern` imports them from there. They are to move out of the asset
# package (issue 19, item 5); until then exactly these imports are allowed, as (importing file, module). Any
# other import of the wiring from the CLI fails, and so does an entry that no longer occurs: the list only shrinks.
CLI_IMPORTS_AWAITING_A_MOVE = {
    ("governance/cli/lifecycle.py", "governance_assets.demo"),  # `govern demo` (it plays monitoring/scenario.py)
    ("governance/cli/lifecycle.py", "governance_assets.status"),  # `govern status`
    ("governance/cli/lifecycle.py", "governance_assets.instance"),  # `govern status`, `govern ui`
}

# Today's package cycles: governance_assets imports jobs and sensors (to assemble the code location and to
# drive runs from the demo), while jobs and sensors import asset keys and partitions from governance_assets.common.
# These imports close them; the programs go with the move above, and definitions.py is the one assembly point
# left to place above jobs and sensors. Any other import that closes a cycle fails, as does a stale entry.
IMPORTS_CLOSING_A_PACKAGE_CYCLE = {
    ("governance_assets/definitions.py", "jobs"),
    ("governance_assets/definitions.py", "jobs.monitoring"),
    ("governance_assets/definitions.py", "sensors.approvals"),
    ("governance_assets/definitions.py", "sensors.monitoring"),
    ("governance_assets/demo.py", "jobs"),
    ("governance_assets/demo.py", "jobs.candidates"),
    ("governance_assets/demo.py", "sensors.approvals"),
    ("governance_assets/monitoring/scenario.py", "jobs"),
    ("governance_assets/monitoring/scenario.py", "jobs.monitoring"),
    ("governance_assets/monitoring/scenario.py", "sensors.monitoring"),
}


def _is_module(dotted: str) -> bool:
    path = REPO.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imported_modules(path: Path) -> set[str]:
    """Absolute modules a file imports; `from package import module` names the module itself."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(
                f"{node.module}.{alias.name}" if _is_module(f"{node.module}.{alias.name}") else node.module
                for alias in node.names
            )
    return found


def _is_wiring(module: str) -> bool:
    top = module.split(".")[0]
    return top in FIRST_PARTY or top.startswith("dagster")


def _sources(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((REPO / package).rglob("*.py")):
        yield path.relative_to(REPO).as_posix(), path


def test_the_governance_core_and_its_cli_do_not_import_dagster_or_its_wiring():
    found = {(name, module) for name, path in _sources(CORE) for module in imported_modules(path) if _is_wiring(module)}
    assert found - CLI_IMPORTS_AWAITING_A_MOVE == set(), "the core imports the wiring"
    assert CLI_IMPORTS_AWAITING_A_MOVE - found == set(), "no longer imported: remove from CLI_IMPORTS_AWAITING_A_MOVE"


def _package_imports() -> set[tuple[str, str]]:
    """(importing file, module) for every import from one wiring package into another."""
    return {
        (name, module)
        for package in WIRING_PACKAGES
        for name, path in _sources(package)
        for module in imported_modules(path)
        if module.split(".")[0] in WIRING_PACKAGES and module.split(".")[0] != package
    }


def package_cycles(imports: set[tuple[str, str]]) -> list[list[str]]:
    """Each package that reaches itself through the imports, with the path it takes (shortest first)."""
    edges: dict[str, set[str]] = {}
    for name, module in imports:
        edges.setdefault(name.split("/")[0], set()).add(module.split(".")[0])
    cycles = []
    for start in sorted(edges):
        paths = [[start]]
        while paths:
            path = paths.pop(0)
            for nxt in sorted(edges.get(path[-1], ())):
                if nxt == start:
                    cycles.append([*path, start])
                    paths = []
                    break
                if nxt not in path:
                    paths.append([*path, nxt])
    return cycles


def test_package_cycles_are_found():
    assert package_cycles({("a/x.py", "b.y"), ("b/y.py", "c"), ("c/z.py", "a.x")}) == [
        ["a", "b", "c", "a"],
        ["b", "c", "a", "b"],
        ["c", "a", "b", "c"],
    ]
    assert package_cycles({("a/x.py", "b.y"), ("b/y.py", "c")}) == []


def test_no_import_cycle_between_the_wiring_packages():
    imports = _package_imports()
    allowed = IMPORTS_CLOSING_A_PACKAGE_CYCLE & imports
    cycles = package_cycles(imports - allowed)
    steps = {pair for cycle in cycles for pair in zip(cycle, cycle[1:])}
    in_cycles = sorted(site for site in imports - allowed if (site[0].split("/")[0], site[1].split(".")[0]) in steps)
    assert cycles == [], f"package cycles {cycles} through {in_cycles}"
    assert IMPORTS_CLOSING_A_PACKAGE_CYCLE - imports == set(), (
        "no longer imported: remove from IMPORTS_CLOSING_A_PACKAGE_CYCLE"
    )
    open_now = {site for site in allowed if not package_cycles(imports - allowed | {site})}
    assert open_now == set(), "these close no cycle any more: remove from IMPORTS_CLOSING_A_PACKAGE_CYCLE"


def test_no_private_key_material_is_tracked_by_git():
    # The pattern is written so that this file does not match it.
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "grep", "-l", "-I", "-E", "PRIVATE KEY-{5}"], capture_output=True, text=True
    )
    assert tracked.stdout.strip() == "", tracked.stdout
