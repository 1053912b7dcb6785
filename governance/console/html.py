"""The console's HTML: one page frame, tables, and marks for what verifies and what does not.

No scripts and no external resources: the stylesheet is the console's own (`/console/static/console.css`).
Everything shown is escaped; only markup built here is passed through (`Markup`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from governance.console import links

# Console pages load only the console's stylesheet and post forms only to the console.
PAGE_POLICY = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'self'"


class Markup(str):
    """HTML built by this module, inserted as is."""

    def __add__(self, other: str) -> Markup:
        return Markup(str.__add__(self, text(other)))


def text(value: Any) -> str:
    if isinstance(value, Markup):
        return value
    if value is None or value == "":
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(text(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return escape(str(value))


def link(href: str, label: Any) -> Markup:
    return Markup(f'<a href="{escape(href)}">{text(label)}</a>')


def code(value: Any) -> Markup:
    return Markup(f"<code>{text(value)}</code>")


def mark(ok: bool | None, yes: str = "verified", no: str = "DOES NOT VERIFY") -> Markup:
    if ok is None:
        return Markup('<span class="muted">n/a</span>')
    return Markup(f'<span class="{"ok" if ok else "bad"}">{escape(yes if ok else no)}</span>')


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "none") -> Markup:
    body = "".join("<tr>" + "".join(f"<td>{text(v)}</td>" for v in row) + "</tr>" for row in rows)
    if not body:
        return Markup(f'<p class="muted">{escape(empty)}</p>')
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def facts(pairs: Iterable[tuple[str, Any]]) -> Markup:
    return Markup("<dl>" + "".join(f"<dt>{escape(name)}</dt><dd>{text(value)}</dd>" for name, value in pairs) + "</dl>")


def section(title: str, *parts: Any) -> Markup:
    return Markup(f"<section><h2>{escape(title)}</h2>{''.join(text(p) for p in parts)}</section>")


def findings(found: Sequence[str], none: str = "none: every step is present and every ledger entry verified") -> Markup:
    if not found:
        return Markup(f'<p class="ok">{escape(none)}</p>')
    return Markup('<ul class="findings">' + "".join(f'<li class="bad">{escape(f)}</li>' for f in found) + "</ul>")


def command(line: str) -> Markup:
    return Markup(f'<pre class="command">{escape(line)}</pre>')


def page(base: str, title: str, *parts: Any, refresh: str | None = None) -> str:
    """The console's frame around `parts`; with `refresh`, the browser loads that address after a second."""
    nav = " · ".join(
        [
            link(links.inventory_url(base), "Inventory"),
            link(links.ledger_url(base), "Ledger"),
            link(links.ledger_verify_url(base), "Verify the ledger"),
            link("/docs", "API"),
        ]
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        + (f'<meta http-equiv="refresh" content="1; url={escape(refresh)}">' if refresh else "")
        + f'<link rel="stylesheet" href="{escape(base)}/static/console.css"></head><body>'
        f'<nav><b>governance-assets console</b> · {nav} <span class="muted">read-only</span></nav>'
        f"<main><h1>{escape(title)}</h1>{''.join(text(p) for p in parts)}</main></body></html>"
    )
