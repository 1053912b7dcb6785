"""The control map: which artefact of an evidence pack evidences which requirement.

A data file compliance edits (`policies/control_map.yaml`, beside the policy
bundle), validated on load: every error names the file and the field. `rows`
lays it out against the files of one pack, one row per requirement and
artefact; a requirement nothing evidences, and an artefact whose files are not
in the pack, are rows marked as gaps so that the table never hides them.
"""

from __future__ import annotations

import csv
import io
import re
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from governance.errors import GovernanceError
from governance.yamlfile import read_yaml

CONTROL_MAP_FILE = "control_map.yaml"
_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
COLUMNS = ("framework", "reference", "requirement", "artefact", "how", "files", "status")


class ControlMapError(GovernanceError):
    """The control map file is invalid. The message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Requirement(_Strict):
    framework: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    title: str = Field(min_length=1)


class Artefact(_Strict):
    title: str = Field(min_length=1)
    files: list[str] = Field(min_length=1, description="pack paths or glob patterns")
    evidences: dict[str, str] = Field(min_length=1, description="requirement id -> how this artefact evidences it")

    @field_validator("files")
    @classmethod
    def _inside_the_pack(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            path = PurePosixPath(pattern)
            if not pattern.strip() or path.is_absolute() or ".." in path.parts or "\\" in pattern:
                raise ValueError(f"{pattern!r} is not a relative path inside the pack")
        return patterns

    @field_validator("evidences")
    @classmethod
    def _explained(cls, evidences: dict[str, str]) -> dict[str, str]:
        empty = [requirement for requirement, how in evidences.items() if not how.strip()]
        if empty:
            raise ValueError(f"say how the artefact evidences {', '.join(empty)}")
        return evidences


class ControlMap(_Strict):
    path: Path
    version: int = Field(ge=1)
    requirements: dict[str, Requirement] = Field(min_length=1)
    artefacts: dict[str, Artefact] = Field(min_length=1)

    def rows(self, pack_files: list[str]) -> list[dict[str, str]]:
        """The table for a pack holding `pack_files`, ordered as the requirements are listed."""
        rows = []
        for requirement_id, requirement in self.requirements.items():
            found = [
                (name, artefact) for name, artefact in self.artefacts.items() if requirement_id in artefact.evidences
            ]
            base = {
                "requirement_id": requirement_id,
                "framework": requirement.framework,
                "reference": requirement.reference,
                "requirement": requirement.title,
            }
            if not found:
                rows.append({**base, "artefact": "", "how": "", "files": "", "status": "GAP: no artefact mapped"})
            for name, artefact in found:
                present = sorted({f for f in pack_files for p in artefact.files if fnmatchcase(f, p)})
                rows.append(
                    {
                        **base,
                        "artefact": artefact.title,
                        "artefact_id": name,
                        "how": artefact.evidences[requirement_id],
                        "files": " ".join(present),
                        "status": "in this pack" if present else "GAP: not in this pack",
                    }
                )
        return rows


def load_control_map(path: str | Path) -> ControlMap:
    """Load and validate; raise ControlMapError naming the file and the field."""
    path = Path(path)
    raw = read_yaml(path, ControlMapError, "control map")
    if not isinstance(raw, dict):
        raise ControlMapError(f"{path}: expected a mapping with 'version', 'requirements' and 'artefacts'")
    try:
        control_map = ControlMap(path=path, **raw)
    except (ValidationError, TypeError) as exc:
        problems = "; ".join(_describe(e) for e in exc.errors()) if isinstance(exc, ValidationError) else str(exc)
        raise ControlMapError(f"{path}: {problems}") from None
    _check_references(control_map)
    return control_map


def _check_references(control_map: ControlMap) -> None:
    path = control_map.path
    for requirement_id in control_map.requirements:
        if not _ID.match(requirement_id):
            raise ControlMapError(
                f"{path}: field 'requirements.{requirement_id}': ids are dotted lower-case words, e.g. eu_ai_act.art14"
            )
    for name, artefact in control_map.artefacts.items():
        for requirement_id in artefact.evidences:
            if requirement_id not in control_map.requirements:
                raise ControlMapError(
                    f"{path}: field 'artefacts.{name}.evidences.{requirement_id}': unknown "
                    f"requirement (known: {', '.join(control_map.requirements)})"
                )


def _describe(error: ErrorDetails) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "(top level)"
    return f"field '{field}': {error['msg'].removeprefix('Value error, ')}"


def to_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
