"""Verifying an evidence pack offline: nothing but the archive (and, optionally, a pinned public key).

Problems (the pack fails) name the file at fault: a file whose SHA-256 is not
the manifest's, a file missing or not listed, a manifest signature that does
not verify with the key the manifest names (or with the pinned key), a roster
or key file that is not the one the manifest names, a ledger entry or proof
that does not lead to the signed checkpoint's root, approved evidence that is
not what the approval statements bound, a statement no ledger entry records or
whose signature does not verify, an approval the manifest names that the pack
does not prove. Notes do not fail the pack but tell the examiner what to compare
by hand, or what changed since (e.g. a statement whose signer left the roster).

A pack that carries its own key and roster proves integrity, not origin: pin the
key the organisation publishes (`pinned_key`) and check the statements against
the roster it publishes (`trusted_keys`) to prove origin too; whoever holds the
signing key could otherwise write a roster of their own.
"""

from __future__ import annotations

import base64
import json
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from governance.digests import digest_of, sha256_hex
from governance.errors import GovernanceError
from governance.events import ApprovalDecided, actions
from governance.ledger import Checkpoint, CheckpointError, verify_checkpoint_signature
from governance.lineage.layout import (
    APPROVED,
    CHECKPOINT,
    ENTRIES,
    MANIFEST,
    PACK_KIND,
    POLICY,
    PUBLIC_KEY,
    ROSTER,
    SIGNATURE,
    STATEMENTS,
    SUMS,
)
from governance.lineage.proofs import entry_problem
from governance.release.evidence_pack import MANIFEST as SEALED_MANIFEST
from governance.trust.keys import parse_public_key_line, public_key_line
from governance.trust.statements import SignedStatement, signing_bytes


@dataclass
class PackVerification:
    archive: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model: str | None = None
    version: str | None = None
    public_key: str | None = None
    roster_digest: str | None = None
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, **self.__dict__}


def verify_pack(
    path: str | Path, pinned_key: Ed25519PublicKey | None = None, trusted_keys: Mapping[str, str] | None = None
) -> PackVerification:
    """Check the archive at `path`; never raises on a bad pack, the result names every problem.

    `trusted_keys` (principal -> public key line, from a roster the examiner trusts) is what the statements'
    signers must hold; without it their signatures are checked against the roster the pack carries, which
    whoever holds the signing key could have written."""
    result = PackVerification(archive=str(path))
    contents = _read(Path(path), result)
    if contents is None:
        return result
    manifest = _manifest(contents, result)
    if manifest is None:
        return result
    key = _signature(contents, manifest, pinned_key, result)
    _files(contents, manifest, result)
    roster = _roster(contents, manifest, result)
    if key is not None:
        entries = _ledger(contents, manifest, key, result)
        _approved_evidence(contents, manifest, result)
        _statements(contents, manifest, _signers(roster, trusted_keys, result), entries, result)
    _policy(contents, result)
    return result


def _read(path: Path, result: PackVerification) -> dict[str, bytes] | None:
    """Every file of the archive by its name inside the pack's one folder."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        result.problems.append(f"{path}: not a readable zip archive ({exc})")
        return None
    with archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        folders = {name.split("/", 1)[0] for name in names}
        if len(folders) != 1 or any("/" not in name for name in names):
            result.problems.append(f"{path}: an evidence pack holds exactly one folder, found {sorted(folders)}")
            return None
        contents = {}
        for name in names:
            inner = name.split("/", 1)[1]
            try:
                contents[inner] = archive.read(name)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                result.problems.append(f"{inner}: damaged in the archive ({exc})")
    result.files = len(contents)
    return contents


def _manifest(contents: dict[str, bytes], result: PackVerification) -> dict | None:
    if MANIFEST not in contents:
        result.problems.append(f"{MANIFEST}: missing; nothing in the pack can be checked")
        return None
    try:
        manifest = json.loads(contents[MANIFEST])
        if manifest.get("kind") != PACK_KIND or not isinstance(manifest.get("files"), dict):
            raise ValueError(f"expected kind {PACK_KIND!r} and a 'files' mapping")
    except (ValueError, AttributeError) as exc:
        result.problems.append(f"{MANIFEST}: not an evidence pack manifest ({exc})")
        return None
    result.model, result.version = manifest.get("model"), manifest.get("version")
    result.roster_digest = (manifest.get("roster") or {}).get("digest")
    return manifest


def _signature(
    contents: dict[str, bytes], manifest: dict, pinned: Ed25519PublicKey | None, result: PackVerification
) -> Ed25519PublicKey | None:
    """The manifest's key if MANIFEST.sig verifies with it (and it is the pinned key, if one is given)."""
    try:
        key = parse_public_key_line(manifest.get("public_key"))
    except GovernanceError as exc:
        result.problems.append(f"{MANIFEST}: field 'public_key': {exc}")
        return None
    result.public_key = public_key_line(key)
    if pinned is not None and public_key_line(pinned) != result.public_key:
        result.problems.append(
            f"{MANIFEST}: signed by {result.public_key}, not by the pinned key {public_key_line(pinned)}"
        )
    if SIGNATURE not in contents:
        result.problems.append(f"{SIGNATURE}: missing")
        return None
    try:
        key.verify(contents[SIGNATURE], contents[MANIFEST])
    except InvalidSignature:
        result.problems.append(
            f"{SIGNATURE}: does not verify over {MANIFEST} with the key it names ({result.public_key})"
        )
        return None
    if pinned is None:
        result.notes.append(
            f"signed by {result.public_key}: compare it with the key your organisation publishes, or pass --public-key"
        )
    return key


def _files(contents: dict[str, bytes], manifest: dict, result: PackVerification) -> None:
    listed = manifest["files"]
    for name, digest in listed.items():
        if name not in contents:
            result.problems.append(f"{name}: listed in the manifest but missing")
        elif sha256_hex(contents[name]) != digest:
            result.problems.append(f"{name}: does not match its SHA-256 in the manifest")
    for name in sorted(set(contents) - set(listed) - {MANIFEST, SIGNATURE}):
        result.problems.append(f"{name}: not in the manifest")
    expected = "".join(f"{digest}  {name}\n" for name, digest in sorted(listed.items()) if name != SUMS)
    if SUMS in contents and contents[SUMS].decode("utf-8", "replace") != expected:
        result.problems.append(f"{SUMS}: does not list the manifest's files and digests")
    if PUBLIC_KEY in contents:
        try:
            loaded = load_pem_public_key(contents[PUBLIC_KEY])
            if not isinstance(loaded, Ed25519PublicKey):
                raise TypeError("not an Ed25519 public key")
            carried = public_key_line(loaded)
        except (ValueError, TypeError):
            carried = None
        if carried != manifest.get("public_key"):
            result.problems.append(f"{PUBLIC_KEY}: not the key the manifest names")


def _roster(contents: dict[str, bytes], manifest: dict, result: PackVerification) -> dict:
    """The carried roster's principals, if it is the roster the manifest names and lists the signer's key."""
    try:
        roster = json.loads(contents[ROSTER])
    except (KeyError, ValueError):
        result.problems.append(f"{ROSTER}: missing or not JSON")
        return {}
    if digest_of(roster) != result.roster_digest:
        result.problems.append(
            f"{ROSTER}: its digest {digest_of(roster)} is not the manifest's roster digest {result.roster_digest}"
        )
    principals = roster.get("principals") or {}
    signer = principals.get(manifest.get("signer")) or {}
    if signer.get("public_key") != manifest.get("public_key"):
        result.problems.append(
            f"{ROSTER}: principal {manifest.get('signer')!r} does not have the key that signed the manifest"
        )
    result.notes.append(f"roster version {roster.get('version')}, digest {result.roster_digest}")
    return principals


def _ledger(contents: dict[str, bytes], manifest: dict, key: Ed25519PublicKey, result: PackVerification) -> list:
    """Check the checkpoint's signature and every entry's hash and proof; return the entries."""
    try:
        checkpoint = Checkpoint.from_json(contents[CHECKPOINT].decode("utf-8", "replace"))
        verify_checkpoint_signature(checkpoint, key)
    except KeyError:
        result.problems.append(f"{CHECKPOINT}: missing")
        return []
    except CheckpointError as exc:
        result.problems.append(f"{CHECKPOINT}: {exc}")
        return []
    signed = manifest.get("ledger_checkpoint") or {}
    if (signed.get("size"), signed.get("root")) != (checkpoint.size, checkpoint.root):
        result.problems.append(f"{CHECKPOINT}: not the checkpoint the manifest names")
    try:
        entries = json.loads(contents[ENTRIES])["entries"]
    except (KeyError, ValueError, TypeError):
        result.problems.append(f"{ENTRIES}: missing or not a ledger excerpt")
        return []
    for entry in entries:
        problem = entry_problem(entry, entry.get("inclusion_proof", []), checkpoint.size, checkpoint.root)
        if problem:
            result.problems.append(f"{ENTRIES}: {problem}")
    result.notes.append(
        f"{len(entries)} ledger entries proven against the checkpoint of {checkpoint.size} entries "
        f"(root {checkpoint.root}) signed at {checkpoint.issued_at}"
    )
    return entries


def _approved_evidence(contents: dict[str, bytes], manifest: dict, result: PackVerification) -> None:
    """The sealed pack is exactly what was approved: its manifest's digest and every file it lists."""
    sealed_name = f"{APPROVED}/{SEALED_MANIFEST}"
    if sealed_name not in contents:
        result.problems.append(f"{sealed_name}: missing")
        return
    if sha256_hex(contents[sealed_name]) != manifest.get("approved_evidence_digest"):
        result.problems.append(
            f"{sealed_name}: its digest is not the approved evidence digest {manifest.get('approved_evidence_digest')}"
        )
    try:
        sealed_files = json.loads(contents[sealed_name])["files"]
    except (ValueError, KeyError, TypeError):
        result.problems.append(f"{sealed_name}: not a sealed evidence manifest")
        return
    for name, digest in sealed_files.items():
        data = contents.get(f"{APPROVED}/{name}")
        if data is None or sha256_hex(data) != digest:
            result.problems.append(f"{APPROVED}/{name}: not the file the sealed evidence pack lists")


def _signers(roster: dict, trusted: Mapping[str, str] | None, result: PackVerification) -> dict[str, str]:
    """Whose key each statement must verify with: the trusted roster's, which the carried roster must agree with."""
    carried = {name: body.get("public_key") for name, body in roster.items()}
    if trusted is None:
        result.notes.append(
            "statement signatures are checked against the roster the pack carries: pass the roster "
            "your organisation publishes (--roster) to check them against it"
        )
        return carried
    for name, line in sorted(carried.items()):
        if name in trusted and trusted[name] != line:
            result.problems.append(f"{ROSTER}: principal {name!r} has another key than in the trusted roster")
    return dict(trusted)


def _statements(
    contents: dict[str, bytes], manifest: dict, signers: dict[str, str], entries: list, result: PackVerification
) -> None:
    """Every statement recorded in the ledger excerpt and signed by its principal; the approval the manifest
    names among them."""
    recorded = {entry["digests"].get("statement") for entry in entries if isinstance(entry.get("digests"), dict)}
    proven = {}
    for name in sorted(n for n in contents if n.startswith(f"{STATEMENTS}/")):
        try:
            signed = SignedStatement.from_json(contents[name].decode("utf-8"), source=name)
        except (GovernanceError, UnicodeDecodeError) as exc:
            result.problems.append(f"{name}: not a signed statement ({exc})")
            continue
        if signed.digest not in recorded:
            result.problems.append(f"{name}: no ledger entry in {ENTRIES} records this statement")
        statement = signed.statement
        if statement.action == "approve" and statement.subject["evidence_digest"] != manifest.get(
            "approved_evidence_digest"
        ):
            result.notes.append(
                f"{name}: approves evidence {statement.subject['evidence_digest']}, an earlier pack "
                "than the one in approved_evidence/"
            )
        problem = _signature_problem(signed, signers)
        if problem is None:
            result.notes.append(f"{name}: {statement.action} signed by {statement.principal}; the signature verifies")
            proven[signed.digest] = statement
        elif statement.principal in signers:
            result.problems.append(f"{name}: {problem}")
        else:
            result.notes.append(f"{name}: {problem} (the roster changed since it was signed)")
    for entry in entries:  # every decision the excerpt records is in the pack, signed by whoever the entry names
        digest = (entry.get("digests") or {}).get("statement")
        if entry.get("action") in actions(ApprovalDecided) and (
            digest not in proven or proven[digest].principal != entry.get("actor")
        ):
            result.problems.append(
                f"{ENTRIES}: entry {entry.get('seq')} ({entry.get('action')} by "
                f"{entry.get('actor')}) has no statement in the pack that it verifies"
            )
    _claimed_approval(manifest, proven, recorded, result)


def _claimed_approval(manifest: dict, proven: dict, recorded: set, result: PackVerification) -> None:
    """The approval the signed manifest names: an `approve` of this model version by the approver it names,
    proven above and recorded in the ledger excerpt (of an earlier pack than approved_evidence/ is a note)."""
    summary = manifest.get("summary") or {}
    claimed, approver = summary.get("approval_statement"), summary.get("approver")
    if not claimed and not approver:
        return
    statement = proven.get(claimed)
    if (
        statement is None
        or claimed not in recorded
        or statement.action != "approve"
        or statement.principal != approver
        or (statement.subject.get("model"), statement.subject.get("version"))
        != (manifest.get("model"), manifest.get("version"))
    ):
        result.problems.append(
            f"{STATEMENTS}/: the approval the manifest names ({claimed}, by {approver}) is not "
            "in the pack as a verified, ledgered approve statement of this version"
        )


def _signature_problem(signed: SignedStatement, signers: dict[str, str]) -> str | None:
    principal = signed.statement.principal
    line = signers.get(principal)
    if line is None:
        return f"{principal} is not in the roster its signature is checked against"
    try:
        parse_public_key_line(line).verify(base64.b64decode(signed.signature), signing_bytes(signed.statement))
    except (InvalidSignature, GovernanceError, ValueError):
        return f"the signature by {principal} does NOT verify with {principal}'s key"
    return None


def _policy(contents: dict[str, bytes], result: PackVerification) -> None:
    """Recompute the policy bundle digest (as governance.policy.bundle does) and compare with the gate's."""
    bundle = {name.split("/")[-1]: sha256_hex(data) for name, data in contents.items() if name.startswith(f"{POLICY}/")}
    if not bundle:
        result.problems.append(f"{POLICY}/: missing")
        return
    try:
        gate = json.loads(contents[f"{APPROVED}/gate_decision.json"])["policy_digest"]
    except (KeyError, ValueError, TypeError):
        result.notes.append("no gate decision to compare the policy bundle with")
        return
    if digest_of(bundle) == gate:
        result.notes.append(f"the policy bundle is the one the release gate applied ({gate})")
    else:
        result.notes.append(
            f"the policy bundle ({digest_of(bundle)}) is not the one the release gate applied "
            f"({gate}): the policies changed since"
        )
