"""The control map compliance edits: the shipped file loads, bad edits are refused naming file and field."""

import re
from pathlib import Path

import pytest
import yaml

from governance.lineage.control_map import ControlMapError, load_control_map
from tests.helpers import REPO

SHIPPED = REPO / "policies" / "control_map.yaml"


def test_the_shipped_map_covers_every_requirement_the_issue_names():
    control_map = load_control_map(SHIPPED)
    references = {(r.framework.split(" (")[0], r.reference) for r in control_map.requirements.values()}
    articles = {re.match(r"Article (\d+)", ref)[1] for fw, ref in references if fw == "EU AI Act"}
    assert {str(article) for article in (*range(9, 16), 72)} <= articles
    sr = {ref for fw, ref in references if fw.startswith("SR 26-2")}
    assert sr == {"Model inventory", "Validation and effective challenge", "Ongoing monitoring", "Outcomes analysis"}
    nist = {ref for fw, ref in references if fw == "NIST AI RMF 1.0"}
    assert {"GOVERN", "MAP", "MEASURE", "MANAGE 2.4"} <= nist
    assert any("1002.9" in ref for fw, ref in references if fw.startswith("Regulation B"))
    rows = control_map.rows([])
    assert not [r for r in rows if r["status"] == "GAP: no artefact mapped"]  # every requirement is evidenced


def test_rows_name_the_files_present_and_the_gaps(tmp_path):
    path = _write(
        tmp_path,
        {
            "version": 1,
            "requirements": {"a.one": _requirement("One"), "a.two": _requirement("Two")},
            "artefacts": {
                "card": {
                    "title": "Card",
                    "files": ["approved_evidence/*.html"],
                    "evidences": {"a.one": "documents it"},
                },
                "alerts": {"title": "Alerts", "files": ["monitoring/*"], "evidences": {"a.one": "watches it"}},
            },
        },
    )
    rows = load_control_map(path).rows(["approved_evidence/model_card.html", "lineage.json"])
    assert [(r["requirement"], r["artefact"], r["files"], r["status"]) for r in rows] == [
        ("One", "Card", "approved_evidence/model_card.html", "in this pack"),
        ("One", "Alerts", "", "GAP: not in this pack"),
        ("Two", "", "", "GAP: no artefact mapped"),
    ]


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda m: m["artefacts"]["card"]["evidences"].update({"eu.art99": "x"}),
            "field 'artefacts.card.evidences.eu.art99': unknown requirement",
        ),
        (lambda m: m["requirements"]["a.one"].pop("title"), "field 'requirements.a.one.title': Field required"),
        (lambda m: m["requirements"]["a.one"].update(owner="x"), "field 'requirements.a.one.owner': Extra inputs"),
        (
            lambda m: m["artefacts"]["card"].update(files=["../secrets.txt"]),
            "field 'artefacts.card.files': '../secrets.txt' is not a relative path inside the pack",
        ),
        (
            lambda m: m["artefacts"]["card"].update(files=[]),
            "field 'artefacts.card.files': List should have at least 1",
        ),
        (lambda m: m["artefacts"]["card"]["evidences"].update({"a.one": " "}), "say how the artefact evidences a.one"),
        (lambda m: m.update(version=0), "field 'version': Input should be greater than or equal to 1"),
        (lambda m: m["requirements"].update({"Bad Id": _requirement("x")}), "field 'requirements.Bad Id': ids are"),
        (lambda m: m.update(extra=1), "field 'extra': Extra inputs are not permitted"),
    ],
)
def test_bad_edits_are_refused_naming_the_file_and_field(tmp_path, edit, message):
    document = {
        "version": 1,
        "requirements": {"a.one": _requirement("One")},
        "artefacts": {"card": {"title": "Card", "files": ["x.html"], "evidences": {"a.one": "documents it"}}},
    }
    edit(document)
    path = _write(tmp_path, document)
    with pytest.raises(ControlMapError) as refused:
        load_control_map(path)
    assert str(refused.value).startswith(f"{path}: ") and message in str(refused.value)


@pytest.mark.parametrize(
    "text, message",
    [("version: [1", "not valid YAML"), ("- a\n- b\n", "expected a mapping"), (b"\xff\xfe", "not UTF-8 text")],
)
def test_unreadable_files_are_refused_by_name(tmp_path, text, message):
    path = tmp_path / "control_map.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ControlMapError, match=message):
        load_control_map(path)
    with pytest.raises(ControlMapError, match="control map not found"):
        load_control_map(tmp_path / "absent.yaml")


def _requirement(title: str) -> dict:
    return {"framework": "Framework", "reference": "Ref", "title": title}


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "control_map.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
