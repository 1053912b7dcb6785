"""`govern decisions seal | verify`: the decision log sealed into the ledger, and held against its seals.

govern decisions seal            seal every model's settled decisions now (the guard and retention also do)
govern decisions verify          each sealed range against the log: deleted, inserted or edited decisions
"""

from __future__ import annotations

from typing import Annotated

import typer

from governance.cli.output import emit, fail
from governance.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The decision log: seal it into the ledger, verify it against its seals.")

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _stores(settings: Settings):
    from governance.decisions import DecisionLog
    from governance.release.services import Services

    return Services(settings), DecisionLog.for_settings(settings)


@app.command()
def seal(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Seal every model's decisions logged over a minute ago and not sealed yet, one ledger entry per range."""
    from governance.lineage.decision_seals import seal_decisions
    from governance.monitoring.lease import LeaseBusy

    try:
        made = seal_decisions(*_stores(ctx.obj))
    except LeaseBusy as exc:
        fail(f"another sealer holds the decision log's sealing lease (try again later): {exc}", 1)
    sealed = [{"model": s.model, "first_seq": s.first_seq, "last_seq": s.last_seq, "count": s.count} for s in made]
    emit(sealed, as_json, _sealed_text)


def _sealed_text(sealed: list[dict]) -> str:
    from governance.lineage.decision_seals import SETTLE

    if not sealed:
        return (
            f"nothing new to seal: a decision is sealed once it has settled, {SETTLE.seconds} s after it was "
            "logged (run this again a minute later, or leave it to `govern guard`)"
        )
    return "\n".join(
        f"sealed {s['model']} seq {s['first_seq']}..{s['last_seq']}: {s['count']} decisions" for s in sealed
    )


@app.command()
def verify(
    ctx: typer.Context,
    model: Annotated[list[str] | None, typer.Option("--model", help="only this model (repeatable)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Hold each sealed range against the decision log; name each decision deleted (outside retention), inserted or
    edited, ledger it as an incident (once) and exit 1. Decisions after the last seal are not yet sealed."""
    from governance.lineage.decision_seals import verify_decision_log

    services, log = _stores(ctx.obj)
    report = verify_decision_log(services, log, model or None)
    emit(report.to_dict(), as_json, _report_text)
    if not report.ok:
        raise typer.Exit(1)


def _report_text(report: dict) -> str:
    lines = []
    for m in report["models"]:
        lines.append(
            f"{m['model']}: {'OK' if not m['findings'] else 'FAILED'}: {m['verified']} decisions match their "
            f"{m['seals']} seals, {m['expired']} deleted by retention, {m['unsealed']} not yet sealed"
        )
        lines += [f"  FINDING {finding}" for finding in m["findings"]]
    return "\n".join(lines) or "the decision log is empty"
