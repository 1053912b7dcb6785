"""The console's routes: a FastAPI app of GET pages, mounted by the scoring API under `/console`.

Bad input (an unknown model, version, decision or ledger entry) gets a page that names it, with 404; a
verification that fails, 409; an unreachable database, 503 with a fixed text; anything else, 500 with a
fixed text (the error stays in the server log). No route writes: the evidence pack download is built in a
temporary directory, outside the state dir, and removed once sent.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from governance import events
from governance.cards.card import CARD_HTML
from governance.config import GovernanceConfig, GovernedModel, load_config
from governance.console import pages, verifying, views
from governance.console.html import PAGE_POLICY
from governance.decisions import DecisionLog
from governance.digests import sha256_hex
from governance.errors import GovernanceError
from governance.events import Event, EventError
from governance.ledger import LAST_SEQ
from governance.lineage.chain import LineageError, version_lineage
from governance.lineage.pack import export_evidence
from governance.lineage.proofs import entry_problem
from governance.lineage.trace import trace_decision
from governance.monitoring.recorded import DRIFT_HTML
from governance.objectstore import fetched, for_reading, sealed_pack_dir
from governance.registry import RegistryError, parse_version_key
from governance.release import evidence_pack
from governance.release.approvals import ApprovalRefused, latest_request
from governance.release.production import deployed_pack, verified_moves
from governance.release.services import Services
from governance.settings import Settings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
# Served evidence (the card, Evidently's HTML) runs in a sandbox that may use what it carries inline and fetch
# nothing.
EVIDENCE_POLICY = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
)
MEDIA = {".html": "text/html; charset=utf-8", ".json": "application/json", ".md": "text/markdown; charset=utf-8"}
UNAVAILABLE = "a governance database cannot be reached; nothing was read or changed, retry later"
INTERNAL = "the console could not build this page; the error is in the server log"
# How long the verify page waits for its verification before it answers with a page that reloads itself.
VERIFY_WAIT_SECONDS = 0.2


class NotFound(GovernanceError):
    """What a page was asked for does not exist; the message names it."""


def create_console(settings: Settings, config: GovernanceConfig | None = None) -> FastAPI:
    config = config or load_config(settings.config_path)
    settings = for_reading(settings)  # a page fetches what it shows outside the state dir
    services, decisions = Services(settings), DecisionLog.for_settings(settings)
    verifications = verifying.Verifications(services.ledger)
    app = FastAPI(title="governance-assets console", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _error_pages(app)

    def governed(name: str) -> GovernedModel:
        if name not in config.models:
            raise NotFound(f"unknown model {name!r} (governed models: {', '.join(sorted(config.models)) or 'none'})")
        return config.models[name]

    def version_of(model: str, version: str) -> str:
        governed(model)
        try:
            owner, _ = parse_version_key(version)
        except RegistryError as exc:
            raise NotFound(f"{version!r} is not a version key like {model}-v1: {exc}") from None
        if owner != model:
            raise NotFound(f"{version} is not a version of {model}")
        return version

    @app.get("/")
    def inventory(request: Request) -> Response:
        states = [views.model_state(services, m) for m in config.models.values()]
        return _html(*pages.inventory(_base(request), states))

    @app.get("/models/{model}")
    def model_page(request: Request, model: str) -> Response:
        state = views.model_state(services, governed(model))
        versions = views.registered_versions(services, model)
        return _html(*pages.model(_base(request), state, versions, views.monitoring_verdicts(services, model)))

    @app.get("/models/{model}/versions/{version}")
    def version_page(request: Request, model: str, version: str) -> Response:
        found = version_lineage(services, model, version_of(model, version), registry=False)
        return _html(*pages.version(_base(request), found.document))

    @app.get("/models/{model}/versions/{version}/card")
    def published_card(request: Request, model: str, version: str) -> Response:
        key = version_of(model, version)
        card = services.ledger.latest(events.CardPublished, model=model, version=key)
        if card is None:
            raise NotFound(f"{key} has no published model card")
        path = settings.model_dir(model, key) / CARD_HTML
        changed = f"{path.name} of {key} is missing or no longer the card ledgered in entry #{card.seq}"
        return _ledgered_html(request, path, card.html, "Model card changed", changed)

    @app.get("/models/{model}/versions/{version}/evidence/{name:path}")
    def evidence_file(model: str, version: str, name: str) -> Response:
        pack = _sealed_pack(services, model, version_of(model, version))
        if name not in pack.manifest["files"]:
            raise NotFound(f"the sealed evidence pack of {version} has no file {name!r}")
        media = MEDIA.get(Path(name).suffix, "application/octet-stream")
        return Response((pack.path / name).read_bytes(), media_type=media, headers=_policy(EVIDENCE_POLICY))

    @app.get("/models/{model}/versions/{version}/evidence-pack.zip")
    def evidence_download(model: str, version: str) -> Response:
        key = version_of(model, version)
        scratch = Path(tempfile.mkdtemp(prefix="govern-console-"))
        try:
            written = export_evidence(services, model, key, scratch / f"evidence-{key}.zip")
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return FileResponse(
            written.path,
            media_type="application/zip",
            filename=written.path.name,
            background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
        )

    @app.get("/models/{model}/monitoring/{seq}")
    def monitoring_report(request: Request, model: str, seq: int) -> Response:
        judged = _judged(services, governed(model).name, seq)
        if judged.evidently_html is None:
            raise NotFound(f"the {judged.stream} report of window {judged.window} has no Evidently HTML")
        path = fetched(settings, settings.resolve(judged.path).parent / DRIFT_HTML)
        changed = f"{path.name} of window {judged.window} is missing or no longer the file ledgered in entry #{seq}"
        return _ledgered_html(request, path, judged.evidently_html, "Evidently report changed", changed)

    @app.get("/decisions/{decision_id}")
    def decision_page(request: Request, decision_id: str) -> Response:
        return _html(*pages.trace(_base(request), trace_decision(services, decisions, decision_id, record=False)))

    @app.get("/ledger")
    def ledger_page(
        request: Request,
        model: str | None = None,
        version: str | None = None,
        action: str | None = None,
        before: Annotated[int | None, Query(ge=1, le=LAST_SEQ)] = None,
    ) -> Response:
        filters = {"model": model or None, "version": version or None, "action": action or None}  # blank: any
        found = views.ledger_page(
            services, model=filters["model"], version=filters["version"], action=filters["action"], before=before
        )
        return _html(*pages.ledger(_base(request), found, filters))

    @app.get("/ledger/verify")
    def ledger_verify(request: Request, run: str | None = None) -> Response:
        verification = verifications.start() if run is None else verifications.get(run)
        if verification is None:
            raise NotFound(f"no ledger verification {run!r} here (the last {verifying.KEEP} are kept): start another")
        if not verification.done.wait(VERIFY_WAIT_SECONDS):
            return _html(*pages.verifying(_base(request), verification.id, verification.started))
        if verification.error is not None:
            raise verification.error
        assert verification.report is not None
        return _html(*pages.verify(_base(request), verification.report, verification.started))

    @app.get("/ledger/{seq}")
    def ledger_entry(request: Request, seq: int) -> Response:
        stored = views.stored_entry(services, seq) if seq >= 1 else None
        if stored is None:
            raise NotFound(f"there is no ledger entry {seq}; the ledger has {services.ledger.size()} entries")
        proof = services.ledger.inclusion_proof(seq)
        problem = entry_problem(stored.to_dict(), list(proof.path), proof.size, proof.root)
        return _html(*pages.entry(_base(request), stored, proof, problem))

    return app


def _base(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def _policy(policy: str) -> dict[str, str]:
    return {"content-security-policy": policy, "x-content-type-options": "nosniff"}


def _html(content: str, status: int) -> HTMLResponse:
    return HTMLResponse(content, status, headers=_policy(PAGE_POLICY))


def _ledgered_html(request: Request, path: Path, digest: str, title: str, changed: str) -> Response:
    """The HTML file at `path` as evidence, if its bytes are the ones the ledger recorded `digest` of; otherwise a
    page saying it changed."""
    content = path.read_bytes() if path.is_file() else None
    if content is None or sha256_hex(content) != digest:
        return _html(*pages.problem(_base(request), title, changed, pages.CONFLICT))
    return Response(content, media_type=MEDIA[".html"], headers=_policy(EVIDENCE_POLICY))


def _sealed_pack(services: Services, model: str, version: str) -> evidence_pack.EvidencePack:
    """The pack the version's latest verified move deployed (its approval signed that digest), else the one last
    requested for approval: a request entry is unsigned, and one appended later changes nothing deployed."""
    deployed = deployed_pack(verified_moves(services, model), version)
    if deployed is not None:
        return evidence_pack.verify(sealed_pack_dir(services.settings, model, version, deployed), deployed)
    try:
        request = latest_request(services, model, version)
    except ApprovalRefused as exc:
        raise NotFound(str(exc)) from None
    return evidence_pack.verify(Path(request.pack_path), request.pack_digest)


def _judged(services: Services, model: str, seq: int) -> events.WindowJudged:
    stored = views.stored_entry(services, seq) if seq >= 1 else None
    try:
        judged = Event.from_entry(stored) if stored else None
    except EventError:
        judged = None
    if not isinstance(judged, events.WindowJudged) or judged.model != model:
        raise NotFound(f"ledger entry {seq} is no monitoring report of {model}")
    return judged


def _error_pages(app: FastAPI) -> None:
    def answer(request: Request, title: str, message: str, status: int) -> HTMLResponse:
        return _html(*pages.problem(_base(request), title, message, status))

    @app.exception_handler(NotFound)
    @app.exception_handler(LineageError)
    async def not_found(request: Request, exc: GovernanceError) -> HTMLResponse:
        return answer(request, "Not found", str(exc), 404)

    @app.exception_handler(GovernanceError)
    async def refused(request: Request, exc: GovernanceError) -> HTMLResponse:
        return answer(request, "Does not verify", str(exc), pages.CONFLICT)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> HTMLResponse:
        message = f"no console page at {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return answer(request, "Not found" if exc.status_code == 404 else "Refused", message, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return answer(request, "Bad request", problems, 422)

    @app.exception_handler(SQLAlchemyError)
    async def unavailable(request: Request, exc: SQLAlchemyError) -> HTMLResponse:
        log.error("console %s: %s", request.url.path, exc)
        return answer(request, "Unavailable", UNAVAILABLE, 503)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> HTMLResponse:
        log.exception("console %s", request.url.path)
        return answer(request, "Internal error", INTERNAL, 500)
