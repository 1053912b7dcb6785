"""`govern evidence`: a signed, self-contained pack; `govern evidence verify` catches every change offline."""

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from governance import events
from governance.data.generator import generate_applications
from governance.lineage.control_map import load_control_map
from governance.lineage.pack import EvidenceExportError, export_evidence
from governance.lineage.verify import verify_pack
from governance.release.services import Services
from governance.trust.keys import generate_key_pair, public_key_line, write_private_key
from tests.lineage.conftest import copy_of, govern
from tests.lineage.world import MODEL, SEEDS, V1, V2

pytestmark = pytest.mark.slow
FOLDER = f"evidence-{V1}"


@pytest.fixture(scope="module")
def pack(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evidence") / "pack.zip"
    result = govern(world.settings, "evidence", MODEL, "1", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"evidence pack written: {out}" in result.output
    return out


def files_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename.split("/", 1)[1]: archive.read(info) for info in archive.infolist()}


def rewritten(path: Path, out: Path, files: dict[str, bytes]) -> Path:
    """The archive as someone who changed its files would re-zip it (consistent CRCs)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"{FOLDER}/{name}", data)
    return out


def test_a_fresh_pack_verifies_on_both_backends(any_world, tmp_path):
    out = tmp_path / "pack.zip"
    written = export_evidence(any_world.services, MODEL, V1, out)
    checked = verify_pack(out, any_world.services.system_key().public_key())
    assert checked.ok, checked.problems
    assert (checked.model, checked.version, checked.files) == (MODEL, V1, written.files)
    assert any("the policy bundle is the one the release gate applied" in n for n in checked.notes)
    assert any(
        n.startswith("statements/approve-") and "signed by ravi; the signature verifies" in n for n in checked.notes
    )


def test_the_cli_verifies_and_pins_the_key(world, pack, tmp_path):
    result = govern(world.settings, "evidence", "verify", pack)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"evidence pack OK: {V1}")
    system = tmp_path / "system.pub.pem"
    system.write_bytes(
        world.services.system_key().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    assert govern(world.settings, "evidence", "verify", pack, "--public-key", system).exit_code == 0
    line = tmp_path / "system.pub"  # the roster's one-line form, as `govern keygen` prints it
    line.write_text(public_key_line(world.services.system_key().public_key()) + "\n")
    assert govern(world.settings, "evidence", "verify", pack, "--public-key", line).exit_code == 0
    other = tmp_path / "other.pub.pem"
    other.write_bytes(generate_key_pair()[1].public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    refused = govern(world.settings, "evidence", "verify", pack, "--public-key", other, "--json")
    assert refused.exit_code == 1
    assert any("not by the pinned key" in p for p in json.loads(refused.output)["problems"])


def test_any_changed_byte_in_any_file_fails_naming_the_file(pack, tmp_path):
    original = files_of(pack)
    for name, data in original.items():
        changed = bytearray(data)
        changed[len(data) // 2] ^= 0x01
        checked = verify_pack(rewritten(pack, tmp_path / "changed.zip", {**original, name: bytes(changed)}))
        assert not checked.ok, name
        assert any(p.startswith(name) or f"over {name}" in p for p in checked.problems), (name, checked.problems)


def test_a_removed_or_added_file_fails_naming_it(pack, tmp_path):
    original = files_of(pack)
    for name in original:
        checked = verify_pack(
            rewritten(pack, tmp_path / "removed.zip", {n: d for n, d in original.items() if n != name})
        )
        assert not checked.ok and any(p.startswith(name) for p in checked.problems), (name, checked.problems)
    checked = verify_pack(rewritten(pack, tmp_path / "added.zip", {**original, "approved_evidence/extra.json": b"{}"}))
    assert checked.problems == ["approved_evidence/extra.json: not in the manifest"]


def test_a_replaced_manifest_signature_fails(pack, tmp_path):
    original = files_of(pack)
    attacker, attacker_public = generate_key_pair()
    resigned = {**original, "MANIFEST.sig": attacker.sign(original["MANIFEST.json"])}
    checked = verify_pack(rewritten(pack, tmp_path / "resigned.zip", resigned))
    assert any(p.startswith("MANIFEST.sig: does not verify over MANIFEST.json") for p in checked.problems)

    # The whole manifest re-issued under the attacker's key: the roster and the ledger checkpoint give it away.
    manifest = json.loads(original["MANIFEST.json"])
    pem = attacker_public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    manifest["public_key"] = public_key_line(attacker_public)
    forged = {**original, "keys/system.pub.pem": pem}
    manifest["files"]["keys/system.pub.pem"] = hashlib.sha256(pem).hexdigest()
    forged["MANIFEST.json"] = json.dumps(manifest).encode()
    forged["MANIFEST.sig"] = attacker.sign(forged["MANIFEST.json"])
    checked = verify_pack(rewritten(pack, tmp_path / "forged.zip", forged))
    assert any(p.startswith("roster.json: principal 'system' does not have the key") for p in checked.problems)
    assert any(p.startswith("ledger/checkpoint.json:") for p in checked.problems)


def test_a_damaged_archive_fails(pack, tmp_path):
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(raw))
    checked = verify_pack(damaged)
    assert not checked.ok and checked.problems
    assert not verify_pack(tmp_path / "missing.zip").ok


def test_no_training_rows_decision_inputs_or_secrets_in_the_pack(world, pack):
    contents = files_of(pack)
    text = "\n".join(data.decode("utf-8", "replace") for data in contents.values())
    training = [generate_applications(6000, seed=seed) for seed in SEEDS.values()]
    numbers = set(re.findall(r"\d{6,}", text))
    for frame in training:
        assert not numbers & {str(i) for i in frame["application_id"]}  # no applicant's id, from any snapshot
    model = world.life.config.model(MODEL)
    rows = [row for frame in training for row in frame.head(200)[model.feature_columns].to_dict(orient="records")]
    for row in rows + list(world.sent.values()):
        for pattern in _row_patterns(row):
            assert not pattern.search(text), pattern.pattern
    secrets = [b"PRIVATE KEY"]
    for key_file in world.settings.keys_dir.glob("*.key"):
        pem = key_file.read_bytes()
        body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
        raw = load_pem_private_key(pem, None).private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        secrets += [body, raw, raw.hex().encode(), base64.b64encode(raw)]
    blob = b"\n".join(contents.values()) + pack.read_bytes()
    for secret in secrets:
        assert secret not in blob


def test_an_examiner_checks_it_with_standard_tools(pack, tmp_path):
    if not shutil.which("sha256sum") or not shutil.which("openssl"):
        pytest.skip("sha256sum or openssl not installed")
    with zipfile.ZipFile(pack) as archive:
        archive.extractall(tmp_path)
    folder = tmp_path / FOLDER
    sums = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    signature = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "keys/system.pub.pem",
            "-rawin",
            "-in",
            "MANIFEST.json",
            "-sigfile",
            "MANIFEST.sig",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert signature.returncode == 0 and "Signature Verified Successfully" in signature.stdout, signature.stderr
    index = (folder / "index.html").read_text()
    assert "approved_evidence/model_card.html" in index and "ravi" in index and "<script" not in index


def test_the_control_map_table_maps_every_artefact_to_its_files(world, pack):
    contents = files_of(pack)
    rows = list(csv.DictReader(io.StringIO(contents["control_map.csv"].decode())))
    control_map = load_control_map(world.settings.policies_dir / "control_map.yaml")
    assert {r["requirement"] for r in rows} == {r.title for r in control_map.requirements.values()}
    missing = {r["artefact"] for r in rows if r["status"] != "in this pack"}
    assert missing == {control_map.artefacts["monitoring_reports"].title}  # no monitoring report yet
    for row in rows:
        assert all(name in contents for name in row["files"].split())
    assert b"Reg B" in contents["control_map.html"] or b"Regulation B" in contents["control_map.html"]


def test_the_version_s_monitoring_reports_are_carried(world, tmp_path):
    settings = copy_of(world, tmp_path / "govern")
    services = Services(settings)
    reports = settings.model_dir(MODEL) / "monitoring"
    for version, stream in ((V1, "drift-1-500-abc"), (V2, "drift-501-1000-def")):
        html = f"<html>Evidently data drift of {version}</html>".encode()
        (reports / stream).mkdir(parents=True)
        (reports / stream / "data_drift.html").write_bytes(html)
        report = json.dumps({"version": version, "alerted": True}).encode()
        (reports / stream / "report.json").write_bytes(report)
        services.ledger.append(
            events.MonitoringAlert(
                actor="system:monitoring",
                model=MODEL,
                version=version,
                report=hashlib.sha256(report).hexdigest(),
                evidently_html=hashlib.sha256(html).hexdigest(),
                window=stream.split("-", 1)[1],
                stream="drift",
                run_id="test-run",
                path=settings.relative(reports / stream / "report.json"),
            )
        )
    export_evidence(services, MODEL, V1, tmp_path / "pack.zip")
    contents = files_of(tmp_path / "pack.zip")
    assert [n for n in contents if n.startswith("monitoring/")] == [
        "monitoring/drift-1-500-abc/data_drift.html",
        "monitoring/drift-1-500-abc/report.json",
    ]
    rows = list(csv.DictReader(io.StringIO(contents["control_map.csv"].decode())))
    assert all(r["status"] == "in this pack" for r in rows)
    assert json.loads(contents["lineage.json"])["monitoring"][0]["action"] == "monitoring.alert"
    assert verify_pack(tmp_path / "pack.zip").ok


def test_export_refuses_a_key_the_roster_does_not_name(world, tmp_path):
    stray = tmp_path / "keys" / "stray.key"
    stray.parent.mkdir()
    write_private_key(stray, generate_key_pair()[0])
    services = Services(replace(world.settings, system_key_override=stray))
    with pytest.raises(EvidenceExportError, match="stray.key: not the key of principal 'system'"):
        export_evidence(services, MODEL, V1, tmp_path / "pack.zip")
    assert not (tmp_path / "pack.zip").exists()


def _row_patterns(row: dict) -> list[re.Pattern]:
    """A serialised row in any key order we write (as given, or sorted): its values in that order, close together."""

    def value(v) -> str:
        if isinstance(v, float) and v.is_integer():
            return rf"{int(v)}(?:\.0)?"
        return re.escape(str(v))

    orders = [list(row), sorted(row)]
    return [re.compile(r"\W{1,40}(?:\w+\W{1,5})?".join(value(row[k]) for k in keys)) for keys in orders]


def _pack_by_the_signing_key_holder(
    tmp_path: Path, approver_key, roster_key, action: str = "approve", version: str = V1, names_it: bool = True
) -> tuple[Path, object]:
    """A pack built from scratch by whoever holds the system key: its own ledger, checkpoint and roster, and a
    statement "by ravi" (`action` of `version`) signed with `approver_key` (None: a signature of zeros) while
    the roster names `roster_key` as ravi's; the manifest names it as the approval (`names_it`, else names only
    ravi). Returns the archive and the system's public key (pinned: origin is not in doubt)."""
    from datetime import timedelta

    from governance.digests import canonical_json, digest_of, sha256_hex
    from governance.ledger import Ledger, sign_checkpoint
    from governance.lineage.layout import PACK_KIND
    from governance.trust.statements import SignedStatement, Statement, sign

    system, system_public = generate_key_pair()
    sealed = canonical_json({"model": MODEL, "version": V1, "facts": {}, "files": {}})
    evidence = sha256_hex(sealed)
    statement = Statement.new(
        action, {"model": MODEL, "version": version, "evidence_digest": evidence}, "ravi", valid_for=timedelta(days=1)
    )
    approval = (
        sign(statement, approver_key)
        if approver_key
        else SignedStatement(statement, base64.b64encode(bytes(64)).decode())
    )
    ledger = Ledger(f"sqlite:///{tmp_path / 'forged.db'}")
    ledger.append_record(
        actor="ravi",
        action="approval.granted",
        subject={"model": MODEL, "version": V1},
        digests={"statement": approval.digest, "evidence_pack": evidence},
    )
    checkpoint = sign_checkpoint(ledger, system, "system")
    entry = {**ledger.entry(1).to_dict(), "inclusion_proof": list(ledger.inclusion_proof(1, checkpoint.size).path)}
    roster = {
        "version": 1,
        "principals": {
            "system": {"roles": ["automation"], "public_key": public_key_line(system_public)},
            "ravi": {"roles": ["model_risk_approver"], "public_key": public_key_line(roster_key)},
        },
    }
    files = {
        "approved_evidence/manifest.json": sealed,
        "roster.json": canonical_json(roster),
        "ledger/checkpoint.json": checkpoint.to_json().encode(),
        "ledger/entries.json": json.dumps({"entries": [entry]}).encode(),
        f"statements/{action}-{approval.digest}.json": approval.to_json().encode(),
        "policy/bundle/x.cedar": b"",
    }
    manifest = canonical_json(
        {
            "kind": PACK_KIND,
            "model": MODEL,
            "version": V1,
            "signer": "system",
            "public_key": public_key_line(system_public),
            "roster": {"version": 1, "digest": digest_of(roster)},
            "ledger_checkpoint": {"size": checkpoint.size, "root": checkpoint.root},
            "approved_evidence_digest": evidence,
            "summary": {"approver": "ravi", "approval_statement": approval.digest if names_it else None},
            "files": {name: sha256_hex(data) for name, data in files.items()},
        }
    )
    out = rewritten(
        None, tmp_path / "forged.zip", {**files, "MANIFEST.json": manifest, "MANIFEST.sig": system.sign(manifest)}
    )
    return out, system_public


def test_an_approval_whose_signature_does_not_verify_fails_the_pack(tmp_path):
    ravi = generate_key_pair()[1]
    forged, system = _pack_by_the_signing_key_holder(tmp_path, None, ravi)
    checked = verify_pack(forged, system)
    assert not checked.ok
    assert any("the signature by ravi does NOT verify with ravi's key" in p for p in checked.problems)
    assert any("the approval the manifest names" in p for p in checked.problems)


def test_a_roster_of_the_signing_key_holder_s_own_fails_against_the_published_one(world, pack, tmp_path):
    impostor, impostor_public = generate_key_pair()
    forged, system = _pack_by_the_signing_key_holder(tmp_path, impostor, impostor_public)
    assert verify_pack(forged, system).ok  # self-consistent: only a roster from outside the pack tells
    published = {"ravi": public_key_line(generate_key_pair()[1])}
    checked = verify_pack(forged, system, published)
    assert "roster.json: principal 'ravi' has another key than in the trusted roster" in checked.problems
    assert any("the signature by ravi does NOT verify" in p for p in checked.problems)

    roster = world.services.roster.path  # the genuine pack against the organisation's roster file
    result = govern(world.settings, "evidence", "verify", pack, "--roster", roster)
    assert result.exit_code == 0 and "checked against the roster the pack carries" not in result.output, result.output


@pytest.mark.parametrize(
    "action, version, names_it",
    [
        ("reject", V1, True),  # ravi's genuine rejection of this pack, named as its approval
        ("approve", V2, True),  # ravi's genuine approval of another version, replayed
        ("approve", V1, False),  # an approver named without the statement
    ],
)
def test_the_approval_the_manifest_names_must_be_an_approval_of_this_version(tmp_path, action, version, names_it):
    ravi, ravi_public = generate_key_pair()
    forged, system = _pack_by_the_signing_key_holder(tmp_path, ravi, ravi_public, action, version, names_it)
    checked = verify_pack(forged, system, {"ravi": public_key_line(ravi_public)})
    assert not checked.ok
    assert any(p.startswith("statements/: the approval the manifest names") for p in checked.problems)
