"""The scoring API: one decision endpoint per governed model, plus status, health, metrics and ledger links.

`create_app(settings)` builds the app for the models in the settings' config.
Each model gets a request schema from its data contract, a champion follower
and a micro-batcher that decides and logs requests together. A bad request is
answered 422 naming its fields; it is not scored and, as no decision was made,
not in the decision log (it is counted in the metrics). A body over the config's
`serving.max_request_bytes` is refused (413) before it is read. When a store cannot be
reached, clients get 503 with a fixed text; the error itself stays in the server log.
`/healthz` says the process is alive (no database read); `/readyz` checks the databases.
Everything else, mounted apps included, needs a bearer token in production (serving/auth.py).
"""

import asyncio
import gc
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.exc import SQLAlchemyError

from governance.config import GovernanceConfig, GovernedModel, load_config
from governance.console.app import create_console
from governance.control import ControlStore, KillSwitch
from governance.decisions import DecisionLog
from governance.ledger import LAST_SEQ, Ledger, LedgerError
from governance.registry import ModelRegistry
from governance.serving import metrics
from governance.serving.auth import ActiveTokens, BearerAuth
from governance.serving.batching import MicroBatcher
from governance.serving.champion import ChampionFollower
from governance.serving.decide import Application, DecisionMaker
from governance.serving.limits import BodyLimit
from governance.serving.pages import DOCS_ASSETS, SameOriginPages
from governance.serving.schema import ApplicationSchema, DecisionAnswer
from governance.serving.tokens import TokenStore
from governance.settings import Settings, apply_offline_env

log = logging.getLogger(__name__)

# What a client is told when a store fails; the error itself (driver text, host, port) stays in the server log.
DATABASE_UNAVAILABLE = "a governance database cannot be reached; nothing was decided or changed, retry later"
NOT_LOGGED = "the decision could not be logged, so none was made; retry later"


@dataclass
class ModelEndpoint:
    model: GovernedModel
    schema: ApplicationSchema
    follower: ChampionFollower
    batcher: MicroBatcher[Application, dict]


def create_app(settings: Settings, config: GovernanceConfig | None = None, *, poll_seconds: float = 1.0) -> FastAPI:
    """The API for every model in `config` (default: the settings' config file)."""
    config = config or load_config(settings.config_path)
    registry, control = ModelRegistry.for_settings(settings), ControlStore.for_settings(settings)
    decision_log, ledger = DecisionLog.for_settings(settings), Ledger.for_settings(settings)
    endpoints = {
        name: _endpoint(settings, model, registry, control, decision_log, poll_seconds)
        for name, model in config.models.items()
    }

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await asyncio.gather(*(asyncio.to_thread(e.follower.refresh) for e in endpoints.values()))
        # Libraries and loaded models are ~500k objects; a full GC pass over them paused decisions for
        # ~300 ms (the p99). Frozen, the cyclic GC only scans what is created while serving.
        gc.collect()
        gc.freeze()
        for endpoint in endpoints.values():
            endpoint.follower.start()
            endpoint.batcher.start()
        yield
        for endpoint in endpoints.values():
            await endpoint.batcher.stop()
            endpoint.follower.stop()

    # /docs and /redoc from assets a pinned package carries, never a CDN; no Swagger validator call either.
    app = FastAPIOffline(
        title="governance-assets scoring API",
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},
        description="Decisions from each governed model's approved champion, logged before they are returned.",
    )
    app.add_middleware(
        BodyLimit,
        max_bytes=config.serving.max_request_bytes,
        setting=f"serving.max_request_bytes in {config.path.name}",
    )
    app.add_middleware(SameOriginPages)
    app.mount("/console", create_console(settings, config))  # the read-only audit console (governance.console)
    if settings.production:  # added last, so it runs first: nothing is read before the caller is known
        app.add_middleware(BearerAuth, tokens=ActiveTokens(TokenStore(settings.ledger_url, ledger)))
    for endpoint in endpoints.values():
        _add_decision_route(app, endpoint)

    @app.exception_handler(SQLAlchemyError)
    async def database_unavailable(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"error": DATABASE_UNAVAILABLE}, 503)

    def endpoint_of(model: str) -> ModelEndpoint:
        if model not in endpoints:
            raise HTTPException(404, f"unknown model {model!r} (governed models: {', '.join(sorted(endpoints))})")
        return endpoints[model]

    @app.post("/models/{model}/decisions", include_in_schema=False)
    def unknown_model(model: str) -> None:
        endpoint_of(model)

    @app.get("/models/{model}", summary="What is served for a model: champion, served version, kill switch")
    def model_status(model: str) -> dict:
        endpoint = endpoint_of(model)
        switch = endpoint.follower.in_force(control.kill_switch(model))
        return {
            "model": model,
            **endpoint.follower.state.describe(),
            **_safe_state(endpoint, switch),
            "kill_switch": {k: v for k, v in asdict(switch).items() if k != "model"},
            "decisioning": endpoint.model.decisioning.model_dump(),
            "follower_problem": endpoint.follower.problem,
        }

    @app.get("/healthz", summary="Liveness (reads no database), and each model's safe state as last followed")
    def healthz() -> dict:
        return {
            "status": "alive",
            "authentication": settings.api_authentication,
            "models": {
                name: {**e.follower.state.describe(), **_safe_state(e, e.follower.kill_switch)}
                for name, e in endpoints.items()
            },
        }

    @app.get(
        "/readyz",
        summary="Readiness: databases reachable; per model champion, kill switch and safe state",
        responses={503: {"description": "a governance database cannot be reached: decisions answer 503"}},
    )
    def readyz() -> JSONResponse:
        try:
            decision_log.ping()
            switches = {name: e.follower.in_force(control.kill_switch(name)) for name, e in endpoints.items()}
        except SQLAlchemyError as exc:
            log.error("readiness: %s", exc)
            return JSONResponse(
                {
                    "ready": False,
                    "databases": "unreachable",
                    "error": DATABASE_UNAVAILABLE,
                    "models": {name: {"decisions": "refused (503) until the databases answer"} for name in endpoints},
                },
                503,
            )
        return JSONResponse(
            {
                "ready": True,
                "databases": "reachable",
                "models": {
                    name: {
                        "champion_version": e.follower.state.champion,
                        **_safe_state(e, switches[name]),
                        "kill_switch": "on" if switches[name].disabled else "off",
                    }
                    for name, e in endpoints.items()
                },
            }
        )

    @app.get("/metrics", summary="Prometheus metrics")
    def prometheus() -> Response:
        content, media_type = metrics.exposition()
        return Response(content, media_type=media_type)

    @app.get("/ledger/entries/{seq}", summary="A ledger entry with its Merkle inclusion proof (read-only)")
    def ledger_entry(seq: int) -> dict:
        if not 1 <= seq <= LAST_SEQ:
            raise HTTPException(404, f"there is no ledger entry {seq}: entries are numbered from 1")
        try:
            entry, proof = ledger.entry(seq), ledger.inclusion_proof(seq)
        except LedgerError as exc:
            raise HTTPException(404, str(exc)) from None
        return {"entry": entry.to_dict(), "inclusion_proof": proof.to_dict()}

    return app


def app_from_env() -> FastAPI:
    """The app for `uvicorn --factory` worker processes: settings from the environment `govern serve` exported."""
    apply_offline_env()
    return create_app(Settings.from_env())


def _endpoint(
    settings: Settings,
    model: GovernedModel,
    registry: ModelRegistry,
    control: ControlStore,
    decision_log: DecisionLog,
    poll_seconds: float,
) -> ModelEndpoint:
    follower = ChampionFollower(settings, model, registry, control, poll_seconds=poll_seconds)
    maker = DecisionMaker(model, follower, control, decision_log)
    return ModelEndpoint(
        model=model,
        schema=ApplicationSchema(model),
        follower=follower,
        batcher=MicroBatcher(maker.decide, name=model.name),
    )


def _add_decision_route(app: FastAPI, endpoint: ModelEndpoint) -> None:
    schema, name = endpoint.schema, endpoint.model.name

    # The body is validated straight from its bytes (pydantic-core parses the JSON itself), which costs less
    # CPU per request than FastAPI's generic body handling; the schema is still published in the OpenAPI.
    async def decide(request: Request) -> Response:
        started = time.perf_counter()
        try:
            application = schema.pydantic.model_validate_json(await request.body())
        except ValidationError as exc:
            return _invalid(name, exc.errors())
        try:
            answer = await endpoint.batcher.submit(Application(*schema.split(application)))
        except Exception as exc:
            log.error("%s: decision not logged, so not made: %s", name, exc)
            metrics.ERRORS.labels(name, "decision_not_logged").inc()
            metrics.REQUESTS.labels(name, "503").inc()
            return JSONResponse({"error": NOT_LOGGED}, 503)
        metrics.LATENCY.labels(name).observe(time.perf_counter() - started)
        metrics.REQUESTS.labels(name, "200").inc()
        return Response(json.dumps(answer), media_type="application/json")

    body = {"required": True, "content": {"application/json": {"schema": schema.pydantic.model_json_schema()}}}
    app.post(
        f"/models/{name}/decisions",
        response_model=DecisionAnswer,
        summary=f"Decide one {name} application",
        openapi_extra={"requestBody": body},
        responses={
            422: {"description": "invalid application; `fields` names each field at fault"},
            503: {"description": "the decision log could not be written; no decision was made"},
        },
    )(decide)


def _safe_state(endpoint: ModelEndpoint, switch: KillSwitch) -> dict:
    """Whether a model's decisions are answered in the safe state (refer), and why."""
    state = endpoint.follower.state  # read once: the follower swaps it whole
    reason = f"kill switch on: {switch.reason}" if switch.disabled else state.safe_reason
    served = state.served
    return {
        "answering_version": served.version if served and not switch.disabled else None,
        "safe_state": reason is not None,
        "safe_state_reason": reason,
    }


def _invalid(model: str, errors: list[ErrorDetails]) -> JSONResponse:
    """422 naming every field at fault; not decided, so not in the decision log (counted in the metrics)."""
    fields = [
        {
            "field": ".".join(str(part) for part in error["loc"]) or "(body)",
            "problem": error["msg"].removeprefix("Value error, "),
        }
        for error in errors
    ]
    metrics.ERRORS.labels(model, "invalid_request").inc()
    metrics.REQUESTS.labels(model, "422").inc()
    summary = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
    return JSONResponse({"error": f"invalid request: {summary}", "fields": fields}, 422)
