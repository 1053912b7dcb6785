"""Running the real asset graph in tests: a config, a state dir, a Dagster instance."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from datetime import timedelta
from html import unescape
from pathlib import Path

import dagster as dg
import uvicorn
import yaml

from definitions import build_definitions
from governance.config import load_config
from governance.registry import ModelRegistry
from governance.release.services import Services
from governance.settings import Settings
from governance.timestamps import utc_now
from governance.trust.demo import demo_key_path, demo_principals
from governance.trust.keys import load_private_key
from jobs.candidates import requested_candidate, run_candidate
from programs.instance import open_instance

REPO = Path(__file__).resolve().parents[1]
SMALL_CONFIG = REPO / "tests" / "configs" / "small.yaml"


def write_config(path: Path, models: dict) -> Path:
    path.write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    return path


def small_model(**overrides) -> dict:
    """The small credit_scoring entry as a dict, with top-level fields replaced."""
    model = yaml.safe_load(SMALL_CONFIG.read_text())["models"]["credit_scoring"]
    return {**model, **overrides}


class Lifecycle:
    """A state dir with its Dagster instance, and the Definitions of a config, for one test."""

    def __init__(self, home: Path, config_path: Path, policies: Path = REPO / "policies") -> None:
        self._open(Settings(home=home, config_path=config_path, policies_override=policies))

    @classmethod
    def of(cls, settings: Settings) -> Lifecycle:
        """The lifecycle of settings made elsewhere (a copied state dir, with its PostgreSQL database and roster).
        Jobs on a PostgreSQL one run inside `tests.lineage.world.database_env`: the resources read the URL from
        the environment, as in production."""
        life = cls.__new__(cls)
        life._open(settings)
        return life

    def _open(self, settings: Settings) -> None:
        self.settings = settings
        self.instance = open_instance(settings)  # the state dir's own, as the CLI and UI use it
        self.config = load_config(settings.config_path)
        self.defs = build_definitions(settings, self.config)
        self.services = Services(settings)
        self.registry = self.services.registry

    def candidate(self, model: str = "credit_scoring", tags: dict | None = None, requested_by: str | None = None):
        """Run the next candidate; `requested_by` (a demo principal) signs its request first, as `govern train`
        does. Without one, nobody verifiably asked for it (as from the UI)."""
        if requested_by is None:
            return run_candidate(self.defs, self.instance, self.registry, self.config.model(model), tags=tags)
        demo_principals(self.settings)
        requester = (requested_by, load_private_key(demo_key_path(self.settings, requested_by)))
        return requested_candidate(self.defs, self.instance, self.services, self.config.model(model), requester)

    def materialized(self, model: str, asset: str, partition: str | None = None) -> list:
        records_filter = dg.AssetRecordsFilter(
            asset_key=dg.AssetKey([model, asset]), asset_partitions=[partition] if partition else None
        )
        return self.instance.fetch_materializations(records_filter, limit=100).records


def register_version(settings: Settings, model_name: str = "credit_scoring", seed: int = 1, rows: int = 3000):
    """Train a small real model on generated data and register it as the next version (no Dagster)."""
    from governance import training
    from governance.data.generator import generate_applications
    from governance.registry import version_key

    model = load_config(SMALL_CONFIG).model(model_name)
    registry = ModelRegistry.for_settings(settings)
    key = version_key(model_name, registry.latest_version(model_name) + 1)
    split = training.split(model, generate_applications(rows, seed=seed))
    run_id = registry.start_run(model_name, key, tags={})
    registered = registry.register(
        model_name,
        key,
        run_id,
        training.fit(model, split.train),
        training.TRUSTED_TYPES[model.estimator.kind],
        tags={"governance.data_md5": "0" * 32},
    )
    registry.finish_run(run_id, ok=True)
    return registered


def gate_decision_file(settings: Settings, model: str, version: str, waived_until: str | None = None) -> Path:
    """The gate decision a pack seals (`gate_decision.json`), as an allowing gate writes it under the model's
    risk tier (passing on a waiver until `waived_until`, when given): what says who may approve the version (for
    tests that skip the gate; `signed_approval` ledgers the same decision)."""
    from governance.digests import canonical_json
    from governance.policy.gate import GateDecision
    from governance.timestamps import utc_now, utc_timestamp

    services = Services(settings)
    decision = GateDecision(
        model=model,
        version=version,
        risk_tier=services.governed_model(model).risk_tier,
        trained_by=(),
        requested_by=(),
        allowed=True,
        policy_digest=services.policies.digest,
        evidence_digest="",  # the pack that seals it is not made yet
        decided_at=utc_timestamp(utc_now()),
        valid_until=waived_until,
        rules_evaluated=(),
        denials=(),
        errors=(),
    )
    path = settings.model_dir(model, version) / "gate_decision.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(canonical_json(decision.to_dict()))
    return path


def sealed_approval(
    settings: Settings,
    version: int,
    model: str = "credit_scoring",
    approver: str = "ravi",
    waived_until: str | None = None,
):
    """A sealed evidence pack of registered `version` and a real signed, recorded approval of it by `approver`
    (the demo cast's key: call `demo_principals` first), for tests of deployment mechanics that skip the gate."""
    from governance.release.evidence_pack import EXPLAINABILITY_FILE, seal

    services = Services(settings)
    registered = services.registry.version(model, version)
    card = settings.home / f"card-v{version}.md"
    card.write_text(f"card of v{version}")
    screened = settings.home / f"explainability-v{version}.json"  # a proxy screen that flagged nothing
    screened.write_text(json.dumps({"proxy_screen": [], "proxy_flags": []}))
    pack = seal(
        settings.model_dir(model, registered.key) / "evidence",
        model,
        registered.key,
        {
            "model_card.md": card,
            "gate_decision.json": gate_decision_file(settings, model, registered.key, waived_until),
            EXPLAINABILITY_FILE: screened,
        },
        {
            "artifact_sha256": registered.artifact_sha256,
            "policy_digest": services.policies.digest,
            "data_md5": registered.tags["governance.data_md5"],
        },
    )
    return signed_approval(settings, pack, approver), pack


def signed_approval(settings: Settings, pack, approver: str = "ravi"):
    """A real `approve` statement of the sealed `pack` by a demo principal, signed with their key and recorded."""
    from datetime import timedelta

    from governance import events
    from governance.release.approvals import Approval
    from governance.release.requests import request_candidate
    from governance.trust.demo import demo_key_path
    from governance.trust.keys import load_private_key
    from governance.trust.statements import Statement, sign

    services = Services(settings)
    model, version = pack.manifest["model"], pack.manifest["version"]
    statement = Statement.new(
        "approve",
        {"model": model, "version": version, "evidence_digest": pack.digest},
        approver,
        valid_for=timedelta(days=30),
    )
    signed = sign(statement, load_private_key(demo_key_path(settings, approver)))
    services.statements.submit(signed, services.roster)
    # dana's signed candidate request, as `govern train` makes it: the version's requester is known
    request_candidate(services, model, version, "dana", load_private_key(demo_key_path(settings, "dana")))
    tier = services.governed_model(model).risk_tier
    services.ledger.append_many(
        [  # what the gate and `approvals.decide` ledger in the graph
            events.GateDecided(
                actor="system:release_gate",
                model=model,
                version=version,
                policy=services.policies.digest,
                evidence=pack.digest,
                allowed=True,
                risk_tier=tier,
            ),
            events.ApprovalGranted(
                actor=approver,
                model=model,
                version=version,
                statement=signed.digest,
                evidence_pack=pack.digest,
                policy=services.policies.digest,
                roles=("model_risk_approver",),
            ),
        ]
    )
    return Approval(
        model=model,
        version=version,
        principal=approver,
        roles=("model_risk_approver",),
        issued_at=statement.issued_at.isoformat(),
        comment="",
        statement_digest=signed.digest,
        evidence_digest=pack.digest,
        policy_digest="0" * 64,
    )


class RunningAPI:
    """uvicorn serving the app in a thread, on a socket bound before it starts."""

    def __init__(self, app) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> RunningAPI:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the scoring API did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()


def console_verification(client, base: str = "/console", timeout: float = 60.0):
    """The console's ledger verification as a browser follows it: the page answers at once and, while the
    verification runs, reloads itself (meta refresh) until the result is there. The result's response."""
    response = client.get(f"{base}/ledger/verify")
    deadline = time.monotonic() + timeout
    while response.status_code == 202:
        assert time.monotonic() < deadline, f"the ledger verification did not finish in {timeout} s"
        reload = re.search(r'<meta http-equiv="refresh" content="1; url=([^"]+)">', response.text)
        assert reload, response.text[:2000]
        time.sleep(0.05)
        response = client.get(unescape(reload.group(1)))
    return response


def wait_until(condition, what: str, timeout: float = 10.0) -> float:
    """Poll `condition` until true; return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
    return time.monotonic() - started


class _Clock:
    ahead = timedelta(0)  # how far `travel` moved the clock; monkeypatch sets it back after the test


def _moved_now():
    return utc_now() + _Clock.ahead


def travel(monkeypatch, by: timedelta) -> None:
    """From now on (for the test), the governance code's clock reads `by` later: every module that took
    `utc_now` from governance.timestamps, and that module itself, so what is written next is dated then. A module
    imported during the test takes the moved clock and keeps it: it reads the right time again once the test has
    ended, since the move itself is undone."""
    monkeypatch.setattr(_Clock, "ahead", _Clock.ahead + by)
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("governance", "governance_assets", "jobs", "sensors", "programs") and (
            getattr(module, "utc_now", None) is utc_now
        ):
            monkeypatch.setattr(module, "utc_now", _moved_now)
