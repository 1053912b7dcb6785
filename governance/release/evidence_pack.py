"""The sealed evidence pack an approver signs.

Sealing copies the version's evidence (model card, reports, validation
result, gate decision) into a new directory named by its digest and writes a
manifest: the SHA-256 of every file plus the facts that identify the version
(data md5, model artifact digest, policy digest, MLflow run, code version).
The pack digest is the SHA-256 of the manifest's canonical JSON. An approval
binds to that digest, so any later change to any file, or to any fact, is a
different pack that nobody approved.

A pack directory is written under a temporary name and renamed into place, so
a crash never leaves half a pack where an approver could find it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from governance.digests import canonical_json, digest_of, file_sha256, sha256_hex
from governance.errors import GovernanceError

MANIFEST = "manifest.json"
# What the release gate seals in every pack, besides the card, plots, policies and validation result.
GATE_FILE = "gate_decision.json"
EXPLAINABILITY_FILE = "explainability.json"


class EvidenceError(GovernanceError):
    """An evidence pack does not match what was sealed; the message names the file."""


@dataclass(frozen=True)
class EvidencePack:
    path: Path
    digest: str
    manifest: dict

    @property
    def facts(self) -> dict:
        return self.manifest["facts"]

    def document(self, name: str, missing: str) -> dict:
        """The JSON document the pack sealed as `name`, read once and checked against the manifest (a file
        changed since `verify` is refused); EvidenceError saying `missing` when the pack seals no such file."""
        sealed = self.manifest["files"].get(name)
        if sealed is None:
            raise EvidenceError(f"{self.path}: {missing}")
        data = (self.path / name).read_bytes()
        if sha256_hex(data) != sealed:
            raise EvidenceError(f"{self.path / name}: changed since the evidence pack was sealed")
        return json.loads(data)


def seal(root: Path, model: str, version: str, files: dict[str, Path], facts: dict) -> EvidencePack:
    """Copy `files` (pack name -> source) into a pack under `root`; return it with its digest."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sealing-", dir=root))
    try:
        for name, source in sorted(files.items()):
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        manifest = {
            "model": model,
            "version": version,
            "facts": facts,
            "files": {name: file_sha256(staging / name) for name in sorted(files)},
        }
        (staging / MANIFEST).write_bytes(canonical_json(manifest))
        digest = digest_of(manifest)
        final = root / digest
        if final.exists():
            shutil.rmtree(staging)  # the very same evidence was sealed before
        else:
            staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return verify(final, digest)


def opened(path: Path, expected_digest: str) -> EvidencePack:
    """The pack whose manifest is the sealed one, its files unchecked: read a document with `document`, which
    checks it; raise EvidenceError if the manifest is missing, unreadable or not the sealed one."""
    path = Path(path)
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise EvidenceError(f"{manifest_file}: the evidence pack has no manifest")
    try:
        manifest = json.loads(manifest_file.read_bytes())
    except (ValueError, OSError) as exc:  # not JSON, or not readable
        raise EvidenceError(f"{manifest_file}: the manifest cannot be read ({exc})") from None
    digest = digest_of(manifest)
    if digest != expected_digest:
        raise EvidenceError(f"{manifest_file}: the manifest's digest is {digest}, not the sealed {expected_digest}")
    return EvidencePack(path=path, digest=digest, manifest=manifest)


def verify(path: Path, expected_digest: str) -> EvidencePack:
    """Recompute a pack from its files; raise EvidenceError naming the first thing that differs."""
    pack = opened(path, expected_digest)
    path, manifest = pack.path, pack.manifest
    for name, sha256 in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise EvidenceError(f"{file}: listed in the evidence pack's manifest but missing")
        if file_sha256(file) != sha256:
            raise EvidenceError(f"{file}: changed since the evidence pack was sealed")
    extra = sorted(
        p.relative_to(path).as_posix()
        for p in path.rglob("*")
        if p.is_file() and p.name != MANIFEST and p.relative_to(path).as_posix() not in manifest["files"]
    )
    if extra:
        raise EvidenceError(f"{path}: files not in the sealed manifest: {', '.join(extra)}")
    return pack
