"""`govern demo`, `govern status`, `govern ui`: running and looking at the governed lifecycle."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from governance.cli.output import emit, fail
from governance.config import load_config
from governance.console import links
from governance.monitoring.recorded import predates_drift_text
from governance.objectstore import for_reading
from governance.policy.bundle import PolicyBundle
from governance.processes import stop_on_sigterm, stop_process_groups
from governance.release.services import Services
from governance.settings import Settings

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def demo(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="governed model to run")] = "credit_scoring",
    port: Annotated[int, typer.Option(help="port for the scoring API the demo starts")] = 8000,
) -> None:
    """Run the governed lifecycle headless on the embedded default and print where to look."""
    from programs import demo as scenario

    settings: Settings = ctx.obj
    config = load_config(settings.config_path)
    config.model(model)
    typer.echo(f"governance-assets demo: {model}, state dir {settings.home}\n")
    facts = scenario.run(settings, config, model, typer.echo, port)
    if not facts["ledger_ok"]:
        fail("the ledger did not verify; run `govern ledger verify` for the first bad entry")
    typer.echo(_where_to_look(settings, facts))


def status(
    ctx: typer.Context,
    as_json: JsonOption = False,
    summary: Annotated[bool, typer.Option("--summary", help="one line a model (for many models)")] = False,
) -> None:
    """Per governed model: versions and the state of each of their assets (`--summary`: one line a model)."""
    from programs.dagster_records import DagsterRecords
    from programs.status import ASSETS
    from programs.status import status as collect

    services = Services(for_reading(ctx.obj))  # status ledgers incidents, but fetches nothing into the state dir
    config = services.config
    with DagsterRecords(services.settings, list(config.models), ASSETS) as dagster:
        found = collect(dagster, services, config)
    emit(found, as_json, _summary_text if summary else _status_text)
    if any(model["incidents"] for model in found):
        raise typer.Exit(1)  # production disagrees with the signed record: see the incidents


def ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Dagster UI port")] = 3000,
    mlflow_port: Annotated[int, typer.Option(help="MLflow UI port")] = 5000,
    api_port: Annotated[int, typer.Option(help="scoring API port")] = 8000,
) -> None:
    """Start the Dagster UI and daemon (`dagster dev`), the MLflow UI, the scoring API and its fairness guard on
    the state dir.

    Config, policies, state and the code location are checked first; nothing starts if one fails. Once
    started, any of them exiting stops the others and `govern ui` exits non-zero, naming it."""
    from programs.daemon import daemon_environment
    from programs.instance import create_databases

    settings: Settings = ctx.obj.serving_on(api_port, mlflow_port)
    config = load_config(settings.config_path)  # a bad config is refused here, with every problem named
    PolicyBundle.load(settings.policies_dir)
    Services(settings).roster  # noqa: B018 (reading it verifies who may sign)
    create_databases(settings)
    # Dagster's processes rebuild these settings from it: their metadata links name the console printed below
    env = {**daemon_environment(settings), "GOVERN_POLICIES": str(settings.policies_dir)}
    bin_dir, workspace = Path(sys.executable).parent, str(Path(__file__).resolve().parents[1] / "workspace.yaml")
    typer.echo(f"checking the code location ({len(config.models)} governed models) ...")
    _check_code_location(bin_dir, workspace, env)
    commands = {
        "Dagster (dagster dev)": [str(bin_dir / "dagster"), "dev", "-w", workspace, "-h", "127.0.0.1", "-p", str(port)],
        "MLflow UI": [
            str(bin_dir / "mlflow"),
            "ui",
            "--backend-store-uri",
            settings.tracking_uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(mlflow_port),
        ],
        "scoring API (govern serve)": [str(bin_dir / "govern"), "serve", "--port", str(api_port)],
        "fairness guard (govern guard)": [str(bin_dir / "govern"), "guard"],
    }
    processes: dict[str, subprocess.Popen] = {}
    stop_on_sigterm()
    exited = None
    try:
        processes.update({name: subprocess.Popen(c, env=env, start_new_session=True) for name, c in commands.items()})
        api = settings.serve_url.rstrip("/")
        typer.echo(
            f"Dagster UI: http://127.0.0.1:{port}   MLflow UI: http://127.0.0.1:{mlflow_port}   "
            f"scoring API: {api}/docs   console: {links.inventory_url(links.console_base(settings))}   "
            "(Ctrl-C stops all)"
        )
        exited = _first_to_exit(processes)
    except KeyboardInterrupt:
        pass
    finally:
        for stop in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the shutdown short
            signal.signal(stop, signal.SIG_IGN)
        stop_process_groups(list(processes.values()))
    if exited is not None:
        name, code = exited
        fail(f"{name} exited with status {code}; stopped the others (its output above says why)")


def _check_code_location(bin_dir: Path, workspace: str, env: dict) -> None:
    """Load the code location as the UI will (`dagster definitions validate`), before anything starts."""
    checked = subprocess.run(
        [str(bin_dir / "dagster"), "definitions", "validate", "-w", workspace],
        env=env,
        capture_output=True,
        text=True,
    )
    if checked.returncode != 0:
        output = (checked.stderr or checked.stdout).strip().splitlines()
        fail("the code location does not load; nothing was started:\n" + "\n".join(output[-15:]))


def _first_to_exit(processes: dict[str, subprocess.Popen]) -> tuple[str, int]:
    """Wait until one of the processes exits; its name and exit status."""
    while True:
        for name, process in processes.items():
            code = process.poll()
            if code is not None:
                return name, code
        time.sleep(1)


def _where_to_look(settings: Settings, facts: dict) -> str:
    return "\n".join(
        [
            "",
            "Where to look:",
            f"  model card (HTML)      {facts['card']}",
            f"  sealed evidence pack   {facts['evidence_pack']}",
            f"  examiner's archive     {facts['evidence_archive']}   (govern evidence verify FILE)",
            "  one decision           govern trace DECISION_ID   /   a version: govern lineage credit_scoring VERSION",
            "  ledger                 govern ledger verify   /   govern ledger show --model credit_scoring",
            "  versions and assets    govern status",
            "  the UI                 make ui, then http://127.0.0.1:3000 (lineage, metadata, checks)",
            f"  the console            make ui, then {links.inventory_url(links.console_base(settings))} "
            "(models, lineage, ledger, evidence)",
        ]
    )


def _status_text(found: list[dict]) -> str:
    lines = []
    for model in found:
        if "unverifiable" in model:
            lines.append(f"{model['model']} (risk tier {model['risk_tier']}; {model['kill_switch']['reason']})")
            lines += [f"  INCIDENT: {incident}" for incident in model["incidents"]]
            continue
        switch = model["kill_switch"]
        state = [
            f"champion v{model['champion']}{_move_text(model['last_move'], model['champion'])}"
            if model["champion"]
            else "no champion: serving refers every application to manual review"
        ]
        if switch["on"]:
            state.append(f"KILL SWITCH ON since {switch['at']} by {switch['by']}: {switch['reason']}")
        elif model["champion"]:
            state.append("serving")
        lines.append(f"{model['model']} (risk tier {model['risk_tier']}; {'; '.join(state)})")
        lines += [f"  INCIDENT: {incident}" for incident in model["incidents"]]
        lines += [f"  WARNING: {warning}" for warning in model["trust"]]
        for waiting in model["awaiting_approval"]:
            who = (
                f"cannot be approved: {waiting['cannot_be_approved']}"
                if "cannot_be_approved" in waiting
                else f"by one of: {', '.join(waiting['may_approve']) or 'nobody in the roster'}"
            )
            lines.append(f"  {waiting['version']} awaits approval of evidence pack {waiting['evidence_pack']} {who}")
            lines += [f"    {predates_drift_text(drift)}" for drift in waiting.get("predates_drift", [])]
        for approved in model["awaiting_release"]:
            lines += _awaiting_release_lines(model["model"], approved)
        lines += _retraining_lines(model["model"], model["retraining"])
        for name, state in model["data"].items():
            lines.append(f"  {name:<24} {_state_text(state)}")
        if not model["versions"]:
            lines.append(f"  no versions yet: `govern train {model['model']} --as YOUR_NAME` requests and runs one")
        for version in model["versions"]:
            lines += _version_lines(version)
            for name, state in version["assets"].items():
                lines.append(f"    {name:<22} {_state_text(state)}")
    return "\n".join(lines)


def _awaiting_release_lines(model: str, approved: dict) -> list[str]:
    """An approved version: why it cannot be released, or that the approval sensor gave up on releasing it and how
    to release it, or that it awaits its release."""
    given_up = approved.get("release_abandoned")
    if "cannot_be_released" in approved:
        waits = f"cannot be released: {approved['cannot_be_released']}"
    elif given_up is not None:
        waits = f"RELEASE GIVEN UP (ledger entry {given_up['ledger_entry']}, {given_up['at']})"
    else:
        waits = "awaits release by the approval sensor (the Dagster daemon: `govern ui` or dagster-daemon)"
    lines = [f"  {approved['version']} approved by {approved['approved_by']}; {waits}"]
    if given_up is not None:
        lines += [
            f"    - {_brief(given_up['reason'] or 'its release runs never ran')}",
            f"    once the cause is fixed (the runs' logs in the Dagster UI), launch {model}_release for "
            f"{approved['version']} in the Dagster UI, or have it approved again: the sensor releases a new approval",
        ]
    return lines


def _retraining_lines(model: str, retraining: dict | None) -> list[str]:
    """The latest retraining request no candidate run answered yet: under way, or given up and how to ask again."""
    if retraining is None:
        return []
    requested = f"retraining requested by {retraining['trigger']} (ledger entry {retraining['ledger_entry']})"
    runs = "; ".join(retraining["runs"]) or "no candidate run yet"
    given_up = retraining.get("abandoned")
    if given_up is None:
        return [f"  {requested}: open ({runs}); the retraining_requests sensor launches its candidate (Dagster daemon)"]
    return [
        f"  {requested}: RETRAINING GIVEN UP (ledger entry {given_up['ledger_entry']}, {given_up['at']})",
        f"    - {_brief(given_up['reason'] or runs)}",
        f"    once the cause is fixed (the runs' logs in the Dagster UI), launch {model}_retraining in the Dagster "
        f"UI (a new request the sensor answers), or `govern train {model} --as YOU`",
    ]


def _summary_text(found: list[dict]) -> str:
    """One line a model: production's state first, then what waits for a person."""
    width = max((len(model["model"]) for model in found), default=5)
    lines = []
    for model in found:
        if "unverifiable" in model:
            production = "UNVERIFIABLE"
        elif model["kill_switch"]["on"]:
            production = "KILL SWITCH ON"
        elif model["champion"]:
            production = f"serving v{model['champion']}"
        else:
            production = "no champion"
        facts = [
            f"{len(model['incidents'])} INCIDENTS" if model["incidents"] else "",
            f"{len(model['awaiting_approval'])} awaiting approval" if model["awaiting_approval"] else "",
            f"{len(model['awaiting_release'])} awaiting release" if model["awaiting_release"] else "",
            f"{len(given_up)} RELEASE(S) GIVEN UP" if (given_up := _releases_given_up(model)) else "",
            "RETRAINING GIVEN UP" if (model["retraining"] or {}).get("state") == "abandoned" else "",
            f"{len(model['versions'])} versions",
        ]
        lines.append(
            f"{model['model']:<{width}}  {model['risk_tier']:<6}  {production:<16}  {', '.join(f for f in facts if f)}"
        )
    return "\n".join(lines)


def _releases_given_up(model: dict) -> list[dict]:
    return [approved for approved in model["awaiting_release"] if "release_abandoned" in approved]


def _version_lines(version: dict) -> list[str]:
    """The version, who asked for it and its gate's outcome with the reasons (denied, or waived)."""
    gate, failed = version.get("gate"), version.get("failed_run")
    if gate is not None:
        outcome = "gate ALLOWED" if gate["allowed"] else "gate DENIED"
    else:
        outcome = f"RUN FAILED (run {failed['run_id']}), no gate decision" if failed else "no gate decision yet"
    lines = [f"  {version['key']}  requested by {version['requested_by']}; {outcome}"]
    lines += [f"    WARNING: {problem}" for problem in version.get("unverified_requests", [])]
    lines += [f"    - {reason}" for reason in (gate or {}).get("reasons", [])]
    lines += [f"    - {_brief(reason)}" for reason in (failed or {}).get("reasons", [])]
    return lines


def _brief(reason: str, width: int = 200) -> str:
    """A failure reason cut to one terminal-friendly line (`govern status --json` has it whole)."""
    return reason if len(reason) <= width else reason[: width - 3] + "..."


def _move_text(move: dict | None, champion: int) -> str:
    """How the champion got there: the last governed move, or a warning when no governed move set it."""
    if move is None:
        return " (NOT set by a governed move: none has completed)"
    by = f"by {move['by']} at {move['at']}"
    if move["version"] != champion:
        return f" (NOT set by a governed move: the last one put v{move['version']} in place {by})"
    if move["kind"] == "rollback":
        origin = f" from v{move['previous_version']}" if move["previous_version"] else ""
        return f" (rolled back{origin} {by})"
    return f" (deployed {by})"


def _state_text(state: dict) -> str:
    if state["state"] == "missing":
        return "-"
    when = state["at"].replace("T", " ")
    extras = " ".join(f"{k}={v}" for k, v in state.items() if k not in ("state", "at", "run_id"))
    return f"{state['state']:<12} {when} {extras}".rstrip()
