"""Exporting a version's evidence as one archive an examiner reads and checks without our software.

A zip holding one folder, `evidence-<version>/` (the layout is described in
policies/control_map.yaml and in the pack's README.txt). Its MANIFEST.json lists
the SHA-256 of every other file and is signed (MANIFEST.sig, raw Ed25519) by the
system principal, whose public key and roster travel with the pack. The ledger
excerpt's inclusion proofs lead to the root of a checkpoint signed by the same
key, taken (after verifying the whole ledger) when the pack is made.

What never goes in: training rows, decision inputs, private keys. The pack
holds aggregate reports, digests, signed statements and public keys only.
The archive is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from governance.config import load_config
from governance.digests import canonical_json, digest_of, file_sha256, sha256_hex
from governance.errors import GovernanceError
from governance.events import actions
from governance.ledger import Checkpoint, sign_checkpoint
from governance.lineage import html
from governance.lineage.chain import MONITORING_EVENTS, Lineage, version_lineage
from governance.lineage.control_map import CONTROL_MAP_FILE, load_control_map, to_csv
from governance.lineage.layout import (
    APPROVED,
    CHECKPOINT,
    ENTRIES,
    MANIFEST,
    MONITORING,
    PACK_KIND,
    POLICY,
    PUBLIC_KEY,
    ROSTER,
    SIGNATURE,
    STATEMENTS,
    SUMS,
    folder_name,
)
from governance.policy.bundle import SCHEMA_FILE, PolicyBundle
from governance.release.evidence_pack import MANIFEST as SEALED_MANIFEST
from governance.release.services import SYSTEM, Services
from governance.timestamps import utc_timestamp
from governance.trust.keys import public_key_line
from governance.trust.roster import Roster


class EvidenceExportError(GovernanceError):
    """No evidence pack was written; the message says what is missing or wrong."""


@dataclass(frozen=True)
class ExportedPack:
    path: Path
    manifest_sha256: str
    files: int
    bytes: int
    checkpoint_size: int
    findings: list[str]

    def to_dict(self) -> dict:
        return {**self.__dict__, "path": str(self.path)}


def export_evidence(services: Services, model: str, version: str, out: Path) -> ExportedPack:
    """Write the evidence pack of `version` to `out` (a .zip); nothing is written if anything is missing."""
    key, roster = services.system_key(), services.roster
    _check_signer(roster, key.public_key(), services)
    checkpoint = sign_checkpoint(services.ledger, key, SYSTEM)
    lineage = version_lineage(services, model, version, size=checkpoint.size)
    files = _contents(services, lineage, checkpoint, roster, key.public_key())
    control_map = load_control_map(services.settings.policies_dir / CONTROL_MAP_FILE)
    extra = ["control_map.csv", "control_map.html", "index.html", "README.txt", SUMS, MANIFEST, SIGNATURE]
    rows = control_map.rows(sorted([*files, *extra]))
    files["control_map.csv"] = to_csv(rows).encode()
    files["control_map.html"] = html.control_map_page(rows, f"Control map: {version}")
    files["index.html"] = html.index_page(lineage.document, rows, {n: sha256_hex(b) for n, b in sorted(files.items())})
    files["README.txt"] = readme(version).encode()
    files[SUMS] = "".join(f"{sha256_hex(data)}  {name}\n" for name, data in sorted(files.items())).encode()
    manifest = canonical_json(
        {
            "kind": PACK_KIND,
            "model": model,
            "version": version,
            "created_at": utc_timestamp(),
            "signer": SYSTEM,
            "public_key": public_key_line(key.public_key()),
            "roster": {"version": roster.version, "digest": roster.digest},
            "ledger_checkpoint": {"size": checkpoint.size, "root": checkpoint.root, "issued_at": checkpoint.issued_at},
            "approved_evidence_digest": lineage.document["evidence_pack"]["digest"],
            "summary": lineage.summary,
            "files": {name: sha256_hex(data) for name, data in sorted(files.items())},
        }
    )
    files[MANIFEST], files[SIGNATURE] = manifest, key.sign(manifest)
    _write_zip(out, folder_name(version), files)
    return ExportedPack(
        path=out,
        manifest_sha256=sha256_hex(manifest),
        files=len(files),
        bytes=out.stat().st_size,
        checkpoint_size=checkpoint.size,
        findings=lineage.document["findings"],
    )


def _check_signer(roster: Roster, public: Ed25519PublicKey, services: Services) -> None:
    """Sign only with the key the roster names for the system principal, so the pack verifies against it."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    listed = roster.principals.get(SYSTEM)
    if listed is None or listed.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw) != raw:
        raise EvidenceExportError(
            f"{services.settings.system_key_path}: not the key of principal {SYSTEM!r} in "
            f"roster version {roster.version} ({roster.path}); a pack signed with it would "
            "not verify against the roster"
        )


def _contents(
    services: Services, lineage: Lineage, checkpoint: Checkpoint, roster: Roster, public: Ed25519PublicKey
) -> dict[str, bytes]:
    document = lineage.document
    files = {
        **_approved_evidence(document),
        **_policy_bundle(services),
        **_statements(services, lineage),
        **_monitoring(services, lineage),
    }
    files["model/config.json"] = _json(_model_config(services, document["model"]))
    files["deployments.json"] = _json(document["deployments"])
    files["lineage.json"] = _json(document)
    files[ENTRIES] = _json(
        {
            "size": lineage.size,
            "root": lineage.root,
            "entries": [
                {**entry.to_dict(), "inclusion_proof": list(lineage.proofs[seq].path)}
                for seq, entry in lineage.entries.items()
            ],
        }
    )
    files[CHECKPOINT] = checkpoint.to_json().encode() + b"\n"
    files[ROSTER] = canonical_json(roster_document(roster))
    files[PUBLIC_KEY] = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return files


def roster_document(roster: Roster) -> dict:
    """The roster's canonical content (public keys and roles only); its digest is the roster digest."""
    document = {"version": roster.version, "principals": {n: p.document() for n, p in roster.principals.items()}}
    if digest_of(document) != roster.digest:
        raise EvidenceExportError(f"{roster.path}: the roster's content does not reproduce its digest")
    return document


def _approved_evidence(document: dict) -> dict[str, bytes]:
    """The sealed pack the approver signed, byte for byte (re-verified by the lineage a moment ago)."""
    pack = document["evidence_pack"]
    if pack is None:
        raise EvidenceExportError(
            f"{document['version']}: no sealed evidence pack (its gate did not pass, or no "
            "approval was requested); `govern lineage` shows what exists"
        )
    if pack["status"] != "verified":
        raise EvidenceExportError(
            f"{document['version']}: the sealed evidence pack {pack['digest']} at "
            f"{pack['path']} cannot be presented as approved evidence: {pack['status']}"
        )
    root, found = Path(pack["path"]), {}
    for name, digest in {SEALED_MANIFEST: pack["digest"], **pack["files"]}.items():
        data = (root / name).read_bytes()
        if sha256_hex(data) != digest:
            raise EvidenceExportError(f"{root / name}: changed while the evidence pack was being written")
        found[f"{APPROVED}/{name}"] = data
    return found


def _policy_bundle(services: Services) -> dict[str, bytes]:
    """The policy bundle in force now (validated by loading it); verifying the pack tells whether it is the one
    the release gate applied."""
    directory = PolicyBundle.load(services.settings.policies_dir).directory
    names = [SCHEMA_FILE, *sorted(p.name for p in directory.glob("*.cedar"))]
    return {f"{POLICY}/{name}": (directory / name).read_bytes() for name in names}


def _statements(services: Services, lineage: Lineage) -> dict[str, bytes]:
    """Every signed statement a cited ledger entry names (approvals, rejections, waivers, rollbacks, kill switch)."""
    cited = {e.digests["statement"] for e in lineage.entries.values() if "statement" in e.digests}
    return {
        f"{STATEMENTS}/{r.signed.statement.action}-{r.digest}.json": r.signed.to_json().encode()
        for r in services.statements.find(model=lineage.document["model"])
        if r.digest in cited
    }


def _monitoring(services: Services, lineage: Lineage) -> dict[str, bytes]:
    """The version's monitoring reports (report.json, Evidently's HTML): the files in the model's monitoring
    directory whose SHA-256 a monitoring entry of the lineage records."""
    root = services.settings.model_dir(lineage.document["model"]) / "monitoring"
    monitoring = actions(*MONITORING_EVENTS)
    wanted = {
        digest for entry in lineage.entries.values() if entry.action in monitoring for digest in entry.digests.values()
    }
    if not wanted or not root.is_dir():
        return {}
    return {
        f"{MONITORING}/{p.relative_to(root).as_posix()}": p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and file_sha256(p) in wanted
    }


def _model_config(services: Services, model: str) -> dict:
    config = load_config(services.settings.config_path)
    return {"model": config.model(model).model_dump(mode="json"), "retention": config.retention.model_dump()}


def _json(value) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def _write_zip(out: Path, folder: str, files: dict[str, bytes]) -> None:
    if not out.parent.is_dir():
        raise EvidenceExportError(f"{out.parent}: no such directory for the evidence pack")
    partial = out.with_name(f".{out.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in sorted(files.items()):
                archive.writestr(f"{folder}/{name}", data)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def readme(version: str) -> str:
    folder = folder_name(version)
    return f"""Evidence pack for {version}
{"=" * (22 + len(version))}

Open index.html: the summary, the version's lineage step by step, the control map
(which file evidences which requirement) and every file with its SHA-256.

Layout
  index.html, control_map.html/.csv   for people
  lineage.json                        the lineage: data snapshot, validation, training run,
                                      reports, gate decision, waivers, evidence pack, approvals,
                                      deployments and rollbacks, kill switch, monitoring
  approved_evidence/                  the sealed evidence pack the approver signed (model card,
                                      reports, gate decision); its manifest.json's SHA-256 is the
                                      evidence_digest every approval statement names
  policy/bundle/                      the Cedar policies in force when the pack was made
  statements/                         signed statements (approve, reject, waive, rollback, ...)
  deployments.json, model/config.json deployments and rollbacks; the model's configuration
  monitoring/                         production monitoring reports, when there are any
  ledger/entries.json                 ledger entries with Merkle inclusion proofs
  ledger/checkpoint.json              the signed checkpoint (tree size and root) they lead to
  roster.json, keys/system.pub.pem    principals' public keys and roles; the signing key
  SHA256SUMS, MANIFEST.json/.sig      digests of every file; the manifest and its signature

Checking it with standard tools (run inside the unpacked folder {folder}/)
  1. Every file is the one listed:
       sha256sum -c SHA256SUMS
     and SHA256SUMS is the one the manifest lists:
       sha256sum SHA256SUMS     (compare with "files" -> "SHA256SUMS" in MANIFEST.json)
  2. The manifest is signed by the system principal (OpenSSL 3):
       openssl pkeyutl -verify -pubin -inkey keys/system.pub.pem -rawin -in MANIFEST.json -sigfile MANIFEST.sig
     Compare the key with the one your organisation publishes for its governance system
     ("public_key" in MANIFEST.json is the same key as ed25519:<base64 of the raw 32 bytes>).
     roster.json is canonical JSON: its SHA-256 is the roster digest in MANIFEST.json, and the
     ledger records that digest with every signed statement it accepted.
  3. The approval covers exactly this evidence: the SHA-256 of approved_evidence/manifest.json
     equals "evidence_digest" in statements/approve-*.json, and every file it lists has the
     SHA-256 it gives.
  4. Ledger entries: an entry's hash is the SHA-256 of the RFC 8785 canonical JSON of
       {{"entry": {{action, actor, digests, subject, ts}}, "payload_digest", "prev_hash", "seq"}}
     (payload_digest = SHA-256 of the canonical payload; payloads past retention are null,
     their digest stays). Leaf = SHA-256(0x00 || entry hash), node = SHA-256(0x01 || left ||
     right) (RFC 6962 / RFC 9162); each inclusion proof leads to the checkpoint's root. The
     checkpoint's signature covers the canonical JSON of
       {{"kind": "governance.ledger.checkpoint/v1", size, root, issued_at, signer}}.

With the governance software: `govern evidence verify <this zip> [--public-key PEM]` runs all
of the above offline and names any file that does not match.
"""
