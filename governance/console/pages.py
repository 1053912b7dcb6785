"""The console's pages, rendered from what `views`, the lineage and the ledger give (each: HTML and a status).

A page whose verification finds a problem (a lineage or trace with findings, an altered ledger entry, a ledger
that does not verify) answers 409, as `govern` exits 1 on them; the page itself says what is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from governance import events
from governance.console import commands, links
from governance.console.html import (
    Markup,
    code,
    command,
    facts,
    findings,
    link,
    mark,
    page,
    section,
    table,
    text,
)
from governance.console.views import LedgerPage, ModelState
from governance.ledger import InclusionProof, LedgerEntry, VerifyReport
from governance.lineage.html import lineage_steps
from governance.timestamps import utc_timestamp

OK, ACCEPTED, CONFLICT = 200, 202, 409
CITATION = {"seq", "entry_hash", "verified", "action", "actor", "ts"}
Page = tuple[str, int]


def _champion(base: str, state: ModelState) -> Any:
    production = state.production
    if production is None:
        return Markup(f'<span class="bad">cannot be verified: {text(state.problem)}</span>')
    if production.move is None:
        return Markup('<span class="bad">none: every application is referred (safe state)</span>')
    move = production.move
    return Markup(
        f"{link(links.version_url(move.model, move.version, base), move.version)} "
        f'<span class="muted">({text(move.kind)} by {text(move.actor)}, {link(links.ledger_entry_url(move.seq, base), f"#{move.seq}")})</span>'
    )


def _kill_switch(state: ModelState) -> Markup:
    production = state.production
    if production is None:
        return Markup('<span class="bad">unknown: counts as ON</span>')
    if production.kill_switch:
        reason = production.flip.reason if production.flip else ""
        return Markup(f'<span class="bad">ON</span> {text(reason)}')
    return Markup('<span class="ok">off</span>')


def _verdict(base: str, state: ModelState) -> Any:
    verdict = state.verdict
    if verdict is None:
        return Markup('<span class="muted">no window judged yet</span>')
    alert = isinstance(verdict, events.MonitoringAlert)
    label = f"{'ALERT' if alert else 'ok'}: {verdict.stream} window {verdict.window} ({verdict.version})"
    return Markup(
        f'<span class="{"bad" if alert else "ok"}">{link(links.monitoring_url(verdict.model, verdict.seq, base), label)}</span>'
    )


def inventory(base: str, states: list[ModelState]) -> Page:
    rows = [
        [
            link(links.model_url(s.model.name, base), s.model.name),
            s.model.risk_tier,
            _champion(base, s),
            _kill_switch(s),
            _pending(s),
            _incidents(s),
            _verdict(base, s),
        ]
        for s in states
    ]
    header = ["Model", "Risk tier", "Champion (verified)", "Kill switch", "Pending approval", "Open incidents"]
    body = table([*header, "Last monitoring verdict"], rows, empty="no governed models in the config")
    return page(base, "Governed models", body), CONFLICT if any(s.problem for s in states) else OK


UNKNOWN = Markup('<span class="bad">unknown: the signed record cannot be verified</span>')


def _pending(state: ModelState) -> Any:
    if state.waiting is None:
        return UNKNOWN
    return ", ".join(w.request.version for w in state.waiting if w.stage == "pending") or "none"


def _incidents(state: ModelState) -> Any:
    if state.problem:
        return UNKNOWN
    return Markup(f'<span class="bad">{len(state.incidents)}</span>') if state.incidents else "0"


def model(
    base: str, state: ModelState, versions: list[events.ModelRegistered], verdicts: list[events.WindowJudged]
) -> Page:
    name, production = state.model.name, state.production
    summary = facts(
        [
            ("Risk tier", state.model.risk_tier),
            ("Champion (verified)", _champion(base, state)),
            ("Kill switch (verified)", _kill_switch(state)),
            ("Last monitoring verdict", _verdict(base, state)),
            ("Ledger", link(links.ledger_url(base, model=name), f"entries about {name}")),
        ]
    )
    version_rows = [
        [
            link(links.version_url(name, v.version, base), v.version),
            v.ts,
            code(v.artifact),
            v.dvc_md5,
            link(links.ledger_entry_url(v.seq, base), f"#{v.seq}"),
        ]
        for v in reversed(versions)
    ]
    waiting = (
        [Markup(f"<p>{UNKNOWN}</p>")]
        if state.waiting is None
        else [_waiting_part(w) for w in state.waiting] or [Markup('<p class="muted">nothing waits</p>')]
    )
    incidents = Markup(f"<p>{UNKNOWN}</p>") if state.problem else findings(state.incidents, none="none")
    verdict_rows = [
        [
            link(links.monitoring_url(name, v.seq, base), v.ts),
            v.version,
            v.stream,
            v.window,
            mark(not isinstance(v, events.MonitoringAlert), "ok", "ALERT"),
            v.summary,
        ]
        for v in verdicts
    ]
    on = bool(production and production.kill_switch)
    body = [
        summary,
        section("Open incidents", incidents),
        section("Approvals waiting", *waiting),
        section(
            "Versions", table(["Version", "Registered", "Artifact sha256", "Data md5", "Ledger"], version_rows)
        ),
        section(
            "Monitoring", table(["Judged", "Version", "Stream", "Window", "Verdict", "Summary"], verdict_rows)
        ),
        section(
            "Actions (signed on your machine)",
            Markup("<p>The console takes no keys. Run the command where your private key is; it signs a "
                   "statement that is verified and ledgered like every action.</p>"),
            Markup("<h3>Kill switch</h3>"),
            command(commands.kill_switch(name, not on)),
            Markup("<h3>Roll back to the previous approved version</h3>"),
            command(commands.rollback(name)),
        ),
    ]  # fmt: skip
    return page(base, f"{name}", *body), CONFLICT if state.problem else OK


def _waiting_part(waiting) -> Markup:
    request = waiting.request
    if waiting.stage == "awaiting_release":
        return Markup(f"<p>{text(request.version)}: approved by {text(waiting.approver)}, not yet released</p>")
    who = (
        f"cannot be approved: {waiting.problem}"
        if waiting.problem
        else f"may approve: {', '.join(waiting.may_approve) or 'nobody in the roster'}"
    )
    return Markup(
        f"<p><b>{text(request.version)}</b> waits for approval of evidence pack {code(request.pack_digest)} "
        f"(requested by {text(waiting.requested_by)}; {text(who)})</p>"
        + "".join(f'<p class="bad">{text(drift)}</p>' for drift in waiting.predates_drift)
        + command(commands.approve(request))
        + command(commands.reject(request))
    )


def _citations(value: Any, found: dict[int, dict]) -> dict[int, dict]:
    """Every ledger entry the lineage document cites (each with whether its hash and proof verified)."""
    if isinstance(value, dict):
        if CITATION <= value.keys():
            found.setdefault(value["seq"], value)
        for item in value.values():
            _citations(item, found)
    elif isinstance(value, list):
        for item in value:
            _citations(item, found)
    return found


def _checks(base: str, document: dict) -> Markup:
    rows = [
        [
            link(links.ledger_entry_url(seq, base), f"#{seq}"),
            cited["action"],
            cited["actor"],
            cited["ts"],
            code(cited["entry_hash"]),
            mark(cited["verified"]),
        ]
        for seq, cited in sorted(_citations(document, {}).items())
    ]
    return Markup(
        f"<p>Each entry must hash to its entry hash, and its inclusion proof lead to the root "
        f"{code(document['ledger']['root'])} of the first {document['ledger']['size']} entries.</p>"
    ) + table(["Entry", "Action", "By", "When", "Entry hash", "Hash and inclusion proof"], rows)


def version(base: str, doc: dict) -> Page:
    model, key = doc["model"], doc["version"]
    pack = doc["evidence_pack"] or {}
    files = sorted((pack.get("files") or {}).keys())
    published = any(r["report"] == "model_card" for r in doc["reports"])
    evidence = [
        Markup(f"<p>{link(links.card_url(model, key, base), 'The model card as last published')}, with its plots</p>")
        if published
        else "",
        facts(
            [
                ("Sealed pack", code(pack.get("digest"))),
                ("Status", mark(pack.get("status") == "verified", "verified", str(pack.get("status")))),
            ]
        )
        if pack
        else Markup('<p class="muted">no sealed evidence pack (its gate has not passed)</p>'),
        table(["File"], [[link(links.evidence_file_url(model, key, f, base), f)] for f in files], empty="no files"),
        Markup(
            f"<p>{link(links.evidence_pack_url(model, key, base), 'Download the evidence pack')} "
            "(a signed zip an examiner verifies offline with <code>govern evidence verify</code>)</p>"
        )
        if pack
        else "",
    ]
    body = [
        facts([(k.replace("_", " "), v) for k, v in doc["summary"].items()]),
        section("Findings", findings(doc["findings"])),
        section("Lineage", table(["Step", "What", "By", "When", "Ledger entry"], lineage_steps(doc))),
        section("Every check", _checks(base, doc)),
        section("Evidence", *evidence),
        section("Ledger", link(links.ledger_url(base, model=model, version=key), f"every entry about {key}")),
    ]
    return page(base, f"{key}: {doc['summary']['status']}", *body), CONFLICT if doc["findings"] else OK


def trace(base: str, traced: dict) -> Page:
    d, switch, move = traced["decision"], traced["kill_switch"], traced["in_force"]
    change = switch["last_change"] or {}
    summary = facts(
        [
            ("Decided at", d["ts"]),
            ("Outcome", d["outcome"]),
            ("Score", d["score"]),
            ("Version", link(links.version_url(d["model"], d["version"], base), d["version"]) if d["version"] else
             Markup('<span class="bad">none: safe state</span>')),
            ("Safe state reason", d["safe_state_reason"]),
            ("Input digest", code(d["input_digest"])),
            ("Inputs retained", d["inputs_retained"]),
            ("Reasons", "; ".join(f"{r.get('code')} {r.get('text')}" for r in d["reasons"]) or "none"),
            ("Kill switch", Markup('<span class="bad">ON</span>') if switch["on"] else "off"),
            ("Last kill-switch change", f"{change.get('state')} by {change.get('by')} at {change.get('at')}: "
             f"{change.get('reason')}" if change else "none"),
            ("In force", f"{move['kind']} #{move['id']} to {move['version']} by {move['actor']} at "
             f"{move['completed_at']}" if move else "no verified move"),
            ("Rollback in force", traced["rollback_in_force"]),
        ]
    )  # fmt: skip
    all_findings = traced["findings"] + ((traced["lineage"] or {}).get("findings") or [])
    body: list[Any] = [summary, section("Findings", findings(all_findings))]
    lineage = traced["lineage"]
    if lineage is not None:
        body.append(
            section(
                f"Lineage of {lineage['version']}",
                table(["Step", "What", "By", "When", "Ledger entry"], lineage_steps(lineage)),
                _checks(base, lineage),
            )
        )
    return page(base, f"Decision {d['decision_id']}", *body), CONFLICT if all_findings else OK


def ledger(base: str, found: LedgerPage, filters: dict[str, str | None]) -> Page:
    inputs = "".join(
        f'<label>{name} <input name="{name}" value="{text(filters.get(name) or "")}"></label>'
        for name in ("model", "version", "action")
    )
    form = Markup(f'<form class="filters" method="get">{inputs}<button>Filter</button></form>')
    rows = [
        [
            link(links.ledger_entry_url(e.seq, base), f"#{e.seq}"),
            e.ts,
            e.action,
            " ".join(f"{k}={v}" for k, v in e.subject.items()),
            e.actor,
            mark(problem is None, "ok", f"ALTERED: {problem}"),
        ]
        for e, problem in found.entries
    ]
    older = (
        link(links.ledger_url(base, **filters, before=found.older), "Older entries →")
        if found.older is not None
        else Markup('<span class="muted">no older entries</span>')
    )
    altered = any(problem for _, problem in found.entries)
    body = [
        Markup(f"<p>{found.size} entries in the ledger. {link(links.ledger_verify_url(base), 'Verify all')}.</p>"),
        form,
        table(["Entry", "Time", "Action", "Subject", "By", "Entry on its own"], rows, empty="no entries match"),
        Markup(f"<p>{older}</p>"),
    ]
    return page(base, "Ledger", *body), CONFLICT if altered else OK


def entry(base: str, stored: LedgerEntry, proof: InclusionProof, problem: str | None) -> Page:
    body = [
        facts(
            [
                ("Action", stored.action),
                ("Time", stored.ts),
                ("By", stored.actor),
                ("Subject", " ".join(f"{k}={v}" for k, v in stored.subject.items())),
                ("Entry hash", code(stored.entry_hash)),
                ("Previous hash", code(stored.prev_hash)),
                ("Payload digest", code(stored.payload_digest)),
                ("Check", mark(problem is None, "entry hash and inclusion proof verify", f"FAILS: {problem}")),
            ]
        ),
        section("Digests", table(["Name", "SHA-256"], [[k, code(v)] for k, v in stored.digests.items()])),
        section("Facts", code(stored.facts)),
        section("Payload", code("(expired by retention)" if stored.payload is None else stored.payload)),
        section(
            "Inclusion proof",
            Markup(f"<p>In the tree of the first {proof.size} entries with root {code(proof.root)}:</p>"),
            table(["Step", "Sibling hash"], [[i, code(h)] for i, h in enumerate(proof.path, 1)], empty="(one entry)"),
        ),
    ]
    return page(base, f"Ledger entry #{stored.seq}", *body), CONFLICT if problem else OK


def verifying(base: str, verification_id: str, started: float) -> Page:
    """A verification still running: the page reloads itself (no script) until its result is there."""
    result = links.ledger_verify_url(base, run=verification_id)
    body = Markup(
        f"<p>Verifying the whole ledger (started {text(_clock(started))}): its chain, payload digests and Merkle "
        f"tree are recomputed from the stored bytes. This page reloads itself until the "
        f"{link(result, 'result')} is there.</p>"
    )
    return page(base, "Ledger verification", body, refresh=result), ACCEPTED


def verify(base: str, report: VerifyReport, started: float) -> Page:
    if report.ok:
        body = Markup(
            f'<p class="ok">The ledger verifies: {report.size} entries, chain and Merkle tree recomputed from the '
            f"stored bytes by the verification started {text(_clock(started))}.</p>"
            f"<p>Merkle root {code(report.root)}</p>"
        )
    else:
        body = Markup(
            f'<p class="bad">The ledger does NOT verify, from entry '
            f"{link(links.ledger_entry_url(report.first_bad_seq or 1, base), f'#{report.first_bad_seq}')}: "
            f"{text(report.problem)}</p><p>Nothing that rests on the entries after it can be vouched for; "
            "see docs/operations.md for what to do.</p>"
        )
    return page(base, "Ledger verification", body), OK if report.ok else CONFLICT


def _clock(epoch: float) -> str:
    return utc_timestamp(datetime.fromtimestamp(epoch, tz=UTC))


def problem(base: str, title: str, message: str, status: int) -> Page:
    return page(base, title, Markup(f'<p class="bad">{text(message)}</p>')), status
