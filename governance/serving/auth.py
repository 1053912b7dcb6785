"""Bearer-token authentication for everything the scoring app serves, mounted apps included.

Deny by default: a request needs `Authorization: Bearer <token>` of an active token (`govern token create`)
unless its path is one of OPEN_PATHS (liveness and readiness probes). It is ASGI middleware rather than a
route dependency so that it also covers what is mounted on the app. Production requires it; the embedded
default (a single-machine sandbox) serves without it and says so on /healthz.

The active tokens are read from the database at most every REFRESH_SECONDS, so a request costs no query and a
revocation takes effect within that time. If the database cannot be read, the last tokens read stay in force;
before any could be read, requests are answered 503.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from governance.serving.tokens import TokenStore, token_matches

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
REFRESH_SECONDS = 5.0
UNAUTHENTICATED = "this API needs a bearer token (Authorization: Bearer <token>); `govern token create` issues one"
CANNOT_CHECK = "credentials cannot be checked: a governance database cannot be reached; retry later"


class ActiveTokens:
    """The active tokens' digests, re-read in the background when older than REFRESH_SECONDS (so that a slow
    or unreachable database delays no request once the tokens were read)."""

    def __init__(self, store: TokenStore, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.store, self.refresh_seconds = store, refresh_seconds
        self.digests: dict[str, str] | None = None
        self.read_at = float("-inf")
        self._refreshing: asyncio.Task | None = None

    async def current(self) -> dict[str, str] | None:
        if self.digests is None:
            await self._refresh()
        elif time.monotonic() - self.read_at >= self.refresh_seconds and not self._busy():
            self._refreshing = asyncio.create_task(self._refresh())
        return self.digests

    def _busy(self) -> bool:
        return self._refreshing is not None and not self._refreshing.done()

    async def _refresh(self) -> None:
        try:
            self.digests = await asyncio.to_thread(self.store.active_digests)
        except Exception as exc:  # noqa: BLE001 - any store failure keeps the last tokens read
            log.error("reading the API tokens: %s", exc)
        finally:
            self.read_at = time.monotonic()


class BearerAuth:
    def __init__(self, app: ASGIApp, tokens: ActiveTokens) -> None:
        self.app, self.tokens = app, tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        active = await self.tokens.current()
        token = _bearer(scope)
        if active is not None and token is not None and token_matches(token, active):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        if active is None:
            return await JSONResponse({"error": CANNOT_CHECK}, 503)(scope, receive, send)
        await JSONResponse({"error": UNAUTHENTICATED}, 401, headers={"WWW-Authenticate": "Bearer"})(
            scope, receive, send
        )


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None
