"""The headless demo: the whole governed lifecycle on the embedded default, narrated.

Every step uses the real pieces: Dagster runs recorded in the state dir's
instance (so `make ui` shows them), the real approval sensor evaluated the way
the daemon would, signed statements made with the demo principals' keys, the
scoring API started as `govern serve` in a subprocess, and the ledger verified
at the end. Nothing here is a shortcut the product does not also take.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import httpx
from dagster._core.storage.tags import RUN_KEY_TAG

from definitions import build_definitions
from governance.config import GovernanceConfig, GovernedModel
from governance.data.generator import generate_applications
from governance.decisions import DecisionLog
from governance.errors import GovernanceError
from governance.lineage.pack import export_evidence
from governance.lineage.trace import trace_decision
from governance.lineage.verify import verify_pack
from governance.policy.gate import describe_finding
from governance.processes import stop_process_groups
from governance.release.approvals import decide
from governance.release.deployment import rollback
from governance.release.kill_switch import set_kill_switch
from governance.release.services import Services
from governance.settings import Settings
from governance.trust.demo import demo_principals
from governance.trust.keys import load_private_key
from jobs import QUIET
from jobs.candidates import requested_candidate
from programs.instance import open_instance
from programs.scenario import play
from resources import governance_resources
from sensors.approvals import APPROVALS

BIASED = {"bias": 0.6}


@dataclass
class Demo:
    settings: Settings
    config: GovernanceConfig
    model: GovernedModel
    say: Callable[[str], None]
    port: int = 8000
    facts: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        refuse_production(self.settings)
        demo_principals(self.settings)
        self.instance = open_instance(self.settings)
        self.defs = build_definitions(self.settings, self.config)
        self.services = Services(self.settings)

    # --- the graph ---------------------------------------------------------------------
    def candidate(
        self, scenario: dict | None = None, requested_by: str = "dana"
    ) -> tuple[str, dg.ExecuteInProcessResult]:
        run_config = {
            **QUIET,
            **({"ops": {f"{self.model.name}__applications": {"config": scenario}}} if scenario else {}),
        }
        requester = (requested_by, self._key(requested_by))  # signed, as `govern train` signs it
        return requested_candidate(self.defs, self.instance, self.services, self.model, requester, run_config)

    def gate(self, key: str) -> dict:
        return json.loads(self._gate_file(key).read_bytes())

    def _gate_file(self, key: str) -> Path:
        return self.settings.model_dir(self.model.name, key) / "gate_decision.json"

    def say_gate(self, key: str) -> None:
        gate = self.gate(key)
        self.say(
            f"   {key}: release gate {'ALLOWED' if gate['allowed'] else 'DENIED'} (policy {gate['policy_digest'][:12]})"
        )
        for denial in gate["denials"]:
            for finding in denial["findings"] or [None]:
                self.say(
                    f"     - {denial['rule']}: "
                    + (describe_finding(finding, digits=4) if finding else denial["message"])
                )

    def pending_approval(self, key: str, result: dg.ExecuteInProcessResult, role: str) -> dict:
        """The approval request of a candidate the story goes on with; if its gate stopped it, why, then stop."""
        if result.success and result.asset_materializations_for_node(f"{self.model.name}__approval_request"):
            return result.output_for_node(f"{self.model.name}__approval_request")
        if self._gate_file(key).is_file():
            self.say_gate(key)
        raise GovernanceError(
            f"{key}: the {role} did not reach its approval request, and the rest of the demo "
            "needs it approved; `govern status` shows where its run stopped"
        )

    def approve(self, key: str, approver: str, comment: str) -> None:
        decide(self.services, self.model.name, key, "approve", approver, self._key(approver), comment)

    def sensor_tick(self) -> list[str]:
        """What the daemon does: evaluate the approvals sensor, launch the runs it requests."""
        sensor = self.defs.resolve_sensor_def(APPROVALS)
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.facts.get("sensor_cursor"),
            resources=governance_resources(self.settings),
        ) as context:  # the resources set up for the tick are torn down after it
            result = sensor(context)
        self.facts["sensor_cursor"] = result.cursor or self.facts.get("sensor_cursor")
        launched = []
        for request in result.run_requests or []:
            run = self.defs.resolve_job_def(request.job_name).execute_in_process(
                instance=self.instance,
                partition_key=request.partition_key,
                tags={**request.tags, RUN_KEY_TAG: request.run_key},  # as the daemon tags it: the sensor finds it
                run_config=QUIET,
                raise_on_error=False,
            )
            launched.append(f"{request.partition_key}: {'deployed' if run.success else 'refused'}")
        return launched

    # --- production -------------------------------------------------------------------------
    def kill_switch(self, disabled: bool, principal: str, reason: str) -> None:
        set_kill_switch(self.services, self.model.name, disabled, principal, self._key(principal), reason)

    def roll_back(self, principal: str, reason: str) -> int:
        return rollback(self.services, self.model.name, principal, self._key(principal), reason).version

    def _key(self, principal: str):
        return load_private_key(self.settings.keys_dir / f"{principal}.key")


class ScoringAPI:
    """`govern serve` in a subprocess on the demo's state dir."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings, self.port = settings, _free_port(port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ScoringAPI:
        command = [
            str(Path(sys.executable).parent / "govern"),
            "--home",
            str(self.settings.home),
            "--config",
            str(self.settings.config_path),
            "serve",
            "--port",
            str(self.port),
        ]
        env = {**os.environ, "GOVERN_POLICIES": str(self.settings.policies_dir)}
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError(f"the scoring API did not start on {self.url}: {self.process.stderr.read(2000)!r}")

    def __exit__(self, *_exc) -> None:
        if self.process is not None:
            stop_process_groups([self.process])

    def decide(self, model: GovernedModel, rows: int, seed: int) -> list[dict]:
        frame = generate_applications(rows, seed=seed)
        columns = model.feature_columns + (
            model.protected_columns if model.monitoring.collect_protected_attributes else []
        )
        answers = []
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for record in frame[columns].to_dict(orient="records"):
                body = {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}
                response = client.post(f"/models/{model.name}/decisions", json=body)
                response.raise_for_status()
                answers.append(response.json())
        return answers

    def wait_for(self, model: GovernedModel, condition: Callable[[dict], bool], timeout: float = 10) -> float:
        """Seconds until a fresh decision satisfies `condition`."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if condition(self.decide(model, 1, seed=int(time.monotonic() * 1000) % 10_000)[0]):
                return time.monotonic() - start
            time.sleep(0.05)
        raise RuntimeError("serving did not follow the change in time")


def _free_port(preferred: int) -> int:
    """`preferred` if nothing listens there, else any free port (the demo must not fight a running API)."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return probe.getsockname()[1]
            except OSError:
                continue
    raise RuntimeError("no free port for the scoring API")


def refuse_production(settings: Settings) -> None:
    """The demo writes demo keys, a demo roster, ledger entries and model versions: never into production."""
    found = settings.production_variables()
    if found:
        raise GovernanceError(
            f"govern demo runs on the embedded default only, and {', '.join(found)} "
            f"{'is' if len(found) == 1 else 'are'} set (production stores or trust); nothing was "
            "written. Unset them to run the demo on the embedded default, in its own state dir"
        )


def run(
    settings: Settings, config: GovernanceConfig, model_name: str, say: Callable[[str], None], port: int = 8000
) -> dict:
    """Play the lifecycle; returns the facts the CLI prints at the end."""
    import mlflow  # noqa: F401  (it sets its loggers' levels on import: quieten them after)

    for logger in ("mlflow", "alembic"):  # table creation notices are not part of the story
        logging.getLogger(logger).setLevel(logging.WARNING)
    demo = Demo(settings, config, config.model(model_name), say, port)
    name = demo.model.name

    say("1. A candidate trained on historically biased data (generator bias knob 0.6)")
    biased, _ = demo.candidate(BIASED)
    demo.say_gate(biased)

    say("2. A candidate on fair data: gate, sealed evidence, waiting for a human")
    fair, result = demo.candidate()
    request = demo.pending_approval(fair, result, "fair candidate")
    say(f"   {fair}: gate ALLOWED; evidence pack {request['pack_digest'][:16]} pending approval")
    try:
        demo.approve(fair, "dana", "my own model")
    except Exception as refused:  # separation of duties: the trainer cannot approve
        say(f"   dana (who trained it) tries to approve: refused: {refused}")
    demo.approve(fair, "ravi", "Fairness and performance within policy; card reviewed.")
    say(f"   ravi (model risk approver) signs the approval; the approval sensor: {', '.join(demo.sensor_tick())}")

    with ScoringAPI(settings, port) as api:
        answers = api.decide(demo.model, 200, seed=101)
        shown = next(a for a in answers if a["outcome"] == "decline")
        say(
            f"3. Serving {name} v{shown['version']}: 200 decisions logged; e.g. {shown['decision_id']}: "
            f"{shown['outcome']} (score {shown['score']:.3f}); reasons: "
            + "; ".join(r["text"] for r in shown["reasons"])
        )
        demo.facts["decision_before_rollback"] = shown["decision_id"]

        say("4. A retrained candidate (new data snapshot), approved by a second approver and deployed")
        retrained, result = demo.candidate({"seed": 5})
        demo.pending_approval(retrained, result, "retrained candidate")
        demo.approve(retrained, "rhea", "Retraining on the current snapshot; no material change.")
        say(
            f"   {retrained}: {', '.join(demo.sensor_tick())}; serving follows in "
            f"{api.wait_for(demo.model, lambda a: a['version'] == demo.services.registry.champion(name)):.2f} s"
        )

        say("5. Kill switch: bea (business owner) stops automated decisions")
        demo.kill_switch(True, "bea", "Complaints about declines under review")
        seconds = api.wait_for(demo.model, lambda a: a["outcome"] == "refer" and a["safe_state"])
        referred = api.decide(demo.model, 50, seed=202)
        say(
            f"   safe state after {seconds:.2f} s: {sum(a['outcome'] == 'refer' for a in referred)}/50 answers are "
            "'refer' to manual review, none declined"
        )
        demo.kill_switch(False, "bea", "Review closed; decisions may resume")

        say("6. Rollback: paul (ML platform) returns to the previously approved version")
        version = demo.roll_back("paul", "Retrained version under investigation")
        api.wait_for(demo.model, lambda a: a["version"] == version)
        after = api.decide(demo.model, 20, seed=303)
        demo.facts["decision_after_rollback"] = after[0]["decision_id"]
        say(f"   champion is v{version} again; serving answers from v{after[0]['version']}")

    say("7. Production monitoring, with the Dagster daemon running the sensors")
    for entry in play(settings, name, say=lambda line: say(f"   {line}")):
        demo.facts.setdefault("monitoring", []).append(entry.action)

    say("8. An auditor traces one decision from before the rollback and one after")
    for label in ("decision_before_rollback", "decision_after_rollback"):
        traced = trace_decision(demo.services, DecisionLog.for_settings(settings), demo.facts[label])
        lineage = traced["lineage"]
        say(
            f"   {traced['decision']['decision_id']}: {traced['decision']['outcome']} by {traced['decision']['version']}, "
            f"approved by {traced['approval']['approver']}, data md5 {lineage['data']['dvc_md5']}"
            + (" (rollback in force)" if traced["rollback_in_force"] else "")
        )
    archive = settings.home / "evidence" / f"{fair}.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    exported = export_evidence(demo.services, name, fair, archive)
    checked = verify_pack(archive)
    say(
        f"   evidence pack for {fair}: {exported.files} files, signed manifest; offline verification "
        f"{'passes' if checked.ok else 'FAILS: ' + '; '.join(checked.problems)}"
    )

    report = demo.services.ledger.verify()
    say(f"9. Ledger: {report.size} entries, chain and Merkle tree {'verify' if report.ok else 'DO NOT VERIFY'}")
    demo.facts.update(
        {
            "biased": biased,
            "fair": fair,
            "retrained": retrained,
            "ledger_ok": report.ok,
            "card": str(settings.model_dir(name, fair) / "model_card.html"),
            "evidence_pack": request["pack_path"],
            "evidence_archive": str(archive),
        }
    )
    return demo.facts
