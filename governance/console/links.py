"""Addresses of console pages, for what links to them (Dagster asset metadata, the console's own pages).

The console is mounted on the scoring API under /console, so it is reached at `Settings.serve_url`
(`GOVERN_SERVE_URL`) + /console: pass `console_base(settings)` as `base`; the console's pages pass their own
mount path.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from governance.settings import Settings

MOUNT = "/console"


def console_base(settings: Settings) -> str:
    return settings.serve_url.rstrip("/") + MOUNT


def _base(base: str) -> str:
    return base.rstrip("/")


def inventory_url(base: str) -> str:
    return f"{_base(base)}/"


def model_url(model: str, base: str) -> str:
    return f"{_base(base)}/models/{quote(model, safe='')}"


def version_url(model: str, version: str, base: str) -> str:
    return f"{model_url(model, base)}/versions/{quote(version, safe='')}"


def card_url(model: str, version: str, base: str) -> str:
    """The version's model card as last published (ledgered), sealed or not."""
    return f"{version_url(model, version, base)}/card"


def evidence_file_url(model: str, version: str, name: str, base: str) -> str:
    return f"{version_url(model, version, base)}/evidence/{quote(name)}"


def evidence_pack_url(model: str, version: str, base: str) -> str:
    return f"{version_url(model, version, base)}/evidence-pack.zip"


def monitoring_url(model: str, seq: int, base: str) -> str:
    return f"{model_url(model, base)}/monitoring/{seq}"


def decision_url(decision_id: str, base: str) -> str:
    return f"{_base(base)}/decisions/{quote(decision_id, safe='')}"


def ledger_url(base: str, **filters: str | int | None) -> str:
    query = urlencode({k: v for k, v in filters.items() if v not in (None, "")})
    return f"{_base(base)}/ledger" + (f"?{query}" if query else "")


def ledger_entry_url(seq: int, base: str) -> str:
    return f"{_base(base)}/ledger/{seq}"


def ledger_verify_url(base: str, run: str | None = None) -> str:
    """The verify page: a new verification, or (with `run`) the one of that id."""
    return f"{_base(base)}/ledger/verify" + (f"?{urlencode({'run': run})}" if run else "")
