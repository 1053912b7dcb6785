"""The evidence pack's pages for people: index.html (summary, lineage, files) and the control map table.

Self-contained HTML (no scripts, no external resources), so an examiner opens it
from the unpacked folder in any browser.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from html import escape
from typing import Any

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;width:100%}th,td{border:1px solid #ccc;padding:.3em .5em;"
    "text-align:left;vertical-align:top;font-size:.9em}th{background:#f3f3f3}code{font-size:.85em}"
    ".gap{color:#a00;font-weight:bold}"
)


def _page(title: str, body: str) -> bytes:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    ).encode()


def _cell(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(escape(str(v)) for v in value)
    return escape(str(value))


def _table(header: list[str], rows: list[list[Any]], raw: AbstractSet[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{v if i in raw else _cell(v)}</td>" for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _status(text: str) -> str:
    return f'<span class="gap">{escape(text)}</span>' if text.startswith("GAP") else escape(text)


def control_map_table(rows: list[dict[str, str]]) -> str:
    return _table(
        [
            "Framework",
            "Reference",
            "Requirement",
            "Artefact",
            "How it evidences the requirement",
            "Files in this pack",
            "Status",
        ],
        [
            [
                r["framework"],
                r["reference"],
                r["requirement"],
                r["artefact"],
                r["how"],
                r["files"],
                _status(r["status"]),
            ]
            for r in rows
        ],
        raw={6},
    )


def control_map_page(rows: list[dict[str, str]], title: str) -> bytes:
    return _page(title, control_map_table(rows))


def _entry(citation: dict | None) -> str:
    return f"#{citation['seq']} {citation['entry_hash'][:16]}…" if citation else ""


def lineage_steps(document: dict) -> list[list[Any]]:
    """One row per lineage step: step, what, by, when, ledger entry."""
    data, validation, training = document["data"] or {}, document["validation"] or {}, document["training"] or {}
    gate, pack = document["gate"] or {}, document["evidence_pack"] or {}
    requested = document["requested"]
    rows = [
        [
            "candidate request",
            f"requested by {requested['text']}",
            ", ".join(requested["by"]),
            requested["entries"][0]["ts"] if requested["entries"] else None,
            ", ".join(_entry(e) for e in requested["entries"]),
        ],
        [
            "data snapshot",
            f"DVC md5 {data.get('dvc_md5')}; source {data.get('source')}; {data.get('rows')} rows",
            "",
            data.get("entry", {}).get("ts"),
            _entry(data.get("entry")),
        ],
        [
            "validation",
            f"passed: {validation.get('passed')}; suite {validation.get('suite')}",
            "",
            validation.get("entry", {}).get("ts"),
            _entry(validation.get("entry")),
        ],
        [
            "training",
            f"MLflow run {training.get('mlflow_run_id')}; code {training.get('code_version')}; "
            f"artifact sha256 {training.get('artifact_sha256')}",
            "",
            training.get("started_at"),
            _entry(training.get("entry")),
        ],
    ]
    rows += [
        [f"report: {r['report']}", f"sha256 {r['sha256']}", "", r["entry"]["ts"], _entry(r["entry"])]
        for r in document["reports"]
    ]
    rows.append(
        [
            "release gate",
            f"allowed: {gate.get('allowed')}; policy {gate.get('policy_digest')}; denials: "
            + (", ".join(d["rule"] for d in gate.get("denials", [])) or "none"),
            "",
            gate.get("decided_at"),
            _entry(gate.get("entry")),
        ]
    )
    rows += [
        ["waiver", f"{w['rule']} until {w['until']}", w["granted_by"], w["entry"]["ts"], _entry(w["entry"])]
        for w in document["waivers"]
    ]
    rows.append(
        [
            "evidence pack",
            f"digest {pack.get('digest')}; {pack.get('status')}",
            "",
            pack.get("requested_at"),
            _entry(pack.get("entry")),
        ]
    )
    rows += [
        [
            f"approval {a['decision']}",
            f"statement {a['statement_digest']}; {a['comment'] or ''}",
            f"{a['approver']} ({', '.join(a['roles'] or [])})",
            a["signed_at"],
            _entry(a["entry"]),
        ]
        for a in document["approvals"]
    ]
    rows += [
        [f"refused: {r['action']}", str(r["reason"] or ""), r["by"], r["at"], _entry(r["entry"])]
        for r in document["refusals"]
    ]
    rows += [
        [
            f"{d['kind']} #{d['id']} ({d['status']})",
            f"{d['from'] or 'none'} → {d['to']}; {d['reason'] or ''}",
            d["actor"],
            d["finished_at"] or d["started_at"],
            ", ".join(_entry(e) for e in d["entries"]),
        ]
        for d in document["deployments"]
    ]
    rows += [
        [f"kill switch {k['state']}", k["reason"], k["by"], k["at"], _entry(k["entry"])]
        for k in document["kill_switch"]["events"]
    ]
    rows += [[m["action"], "", m["by"], m["at"], _entry(m["entry"])] for m in document["monitoring"]]
    return rows


def index_page(document: dict, control_rows: list[dict[str, str]], files: dict[str, str]) -> bytes:
    summary = document["summary"]
    facts = _table(["Fact", "Value"], [[k.replace("_", " "), v] for k, v in summary.items()])
    findings = (
        "<ul>" + "".join(f'<li class="gap">{escape(f)}</li>' for f in document["findings"]) + "</ul>"
        if document["findings"]
        else "<p>None: every step is present and every ledger entry verified.</p>"
    )
    links = _table(
        ["File", "SHA-256"],
        [[f'<a href="{escape(name)}">{escape(name)}</a>', digest] for name, digest in files.items()],
        raw={0},
    )
    body = (
        f"<p>Evidence for <b>{escape(document['version'])}</b>. How to verify this pack without our software: "
        f'<a href="README.txt">README.txt</a>. The model card: '
        f'<a href="approved_evidence/model_card.html">approved_evidence/model_card.html</a>.</p>'
        f"<h2>Summary</h2>{facts}<h2>Findings</h2>{findings}"
        f"<h2>Lineage</h2><p>Every step cites its ledger entry; <code>ledger/entries.json</code> holds each "
        f"entry with its Merkle inclusion proof in the tree of {document['ledger']['size']} entries with root "
        f"<code>{escape(document['ledger']['root'])}</code>, which <code>ledger/checkpoint.json</code> signs.</p>"
        + _table(["Step", "What", "By", "When", "Ledger entry"], lineage_steps(document))
        + f"<h2>Control map</h2>{control_map_table(control_rows)}<h2>Files</h2>{links}"
    )
    return _page(f"Evidence pack: {document['version']}", body)
