"""Addresses of console pages, for what links to them (Dagster asset metadata, the console's own pages).

`GOVERN_CONSOLE_URL` is where people reach the console (default: the scoring API `govern ui` starts, on
port 8000, under /console).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote, urlencode

CONSOLE_URL = "GOVERN_CONSOLE_URL"
DEFAULT_CONSOLE_URL = "http://127.0.0.1:8000/console"


def console_base(environ: Mapping[str, str] = os.environ) -> str:
    return (environ.get(CONSOLE_URL) or DEFAULT_CONSOLE_URL).rstrip("/")


def _base(base: str | None) -> str:
    return console_base() if base is None else base.rstrip("/")


def inventory_url(base: str | None = None) -> str:
    return f"{_base(base)}/"


def model_url(model: str, base: str | None = None) -> str:
    return f"{_base(base)}/models/{quote(model, safe='')}"


def version_url(model: str, version: str, base: str | None = None) -> str:
    return f"{model_url(model, base)}/versions/{quote(version, safe='')}"


def evidence_file_url(model: str, version: str, name: str, base: str | None = None) -> str:
    return f"{version_url(model, version, base)}/evidence/{quote(name)}"


def evidence_pack_url(model: str, version: str, base: str | None = None) -> str:
    return f"{version_url(model, version, base)}/evidence-pack.zip"


def monitoring_url(model: str, seq: int, base: str | None = None) -> str:
    return f"{model_url(model, base)}/monitoring/{seq}"


def decision_url(decision_id: str, base: str | None = None) -> str:
    return f"{_base(base)}/decisions/{quote(decision_id, safe='')}"


def ledger_url(base: str | None = None, **filters: str | int | None) -> str:
    query = urlencode({k: v for k, v in filters.items() if v not in (None, "")})
    return f"{_base(base)}/ledger" + (f"?{query}" if query else "")


def ledger_entry_url(seq: int, base: str | None = None) -> str:
    return f"{_base(base)}/ledger/{seq}"


def ledger_verify_url(base: str | None = None) -> str:
    return f"{_base(base)}/ledger/verify"
