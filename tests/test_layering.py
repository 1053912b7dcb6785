"""Boundaries a reader can trust: the core knows no Dagster, the wiring packages and the programs above them form
no import cycle, keys stay out of the repository.

Imports are read from the source (every `import`, at module level or inside a function), so a lazy
import counts like any other.
"""

import ast
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

CORE = "governance"
# The wiring and the programs above it: every first-party package or top-level module besides the core (the asset
# package, jobs, sensors, resources, the code location's assembly in definitions.py, the programs), and Dagster's
# own libraries.
FIRST_PARTY = {
    p.stem for p in REPO.iterdir() if (p / "__init__.py").exists() or (p.suffix == ".py" and p.is_file())
} - {CORE, "tests"}


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
    module = REPO / f"{package}.py"
    for path in [module] if module.is_file() else sorted((REPO / package).rglob("*.py")):
        yield path.relative_to(REPO).as_posix(), path


def test_the_governance_core_and_its_cli_do_not_import_dagster_or_its_wiring():
    found = {(name, module) for name, path in _sources(CORE) for module in imported_modules(path) if _is_wiring(module)}
    assert found == set(), "the core imports the wiring"


def _package_imports() -> set[tuple[str, str]]:
    """(importing file, module) for every import from one first-party package (or top-level module) besides the
    core into another."""
    return {
        (name, module)
        for package in FIRST_PARTY
        for name, path in _sources(package)
        for module in imported_modules(path)
        if module.split(".")[0] in FIRST_PARTY and module.split(".")[0] != package
    }


def package_cycles(imports: set[tuple[str, str]]) -> list[list[str]]:
    """Each package that reaches itself through the imports, with the path it takes (shortest first)."""
    edges: dict[str, set[str]] = {}
    for name, module in imports:
        edges.setdefault(name.split("/")[0].removesuffix(".py"), set()).add(module.split(".")[0])
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


def test_no_import_cycle_between_the_wiring_packages_and_the_programs():
    """governance_assets, jobs, sensors and resources, the assembly above them (definitions.py) and the programs
    above it: an import from a lower package into a higher one closes a cycle and fails here."""
    assert {"governance_assets", "jobs", "sensors", "resources", "definitions", "programs"} <= FIRST_PARTY
    imports = _package_imports()
    cycles = package_cycles(imports)
    steps = {pair for cycle in cycles for pair in zip(cycle, cycle[1:])}
    in_cycles = sorted(
        site for site in imports if (site[0].split("/")[0].removesuffix(".py"), site[1].split(".")[0]) in steps
    )
    assert cycles == [], f"package cycles {cycles} through {in_cycles}"


def test_no_private_key_material_is_tracked_by_git():
    # The pattern is written so that this file does not match it.
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "grep", "-l", "-I", "-E", "PRIVATE KEY-{5}"], capture_output=True, text=True
    )
    assert tracked.stdout.strip() == "", tracked.stdout
