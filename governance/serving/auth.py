"""Bearer-token authentication for everything the scoring app serves, mounted apps included.

Deny by default: a request needs `Authorization: Bearer <token>` of an active token (`govern token create`)
unless its path is one of OPEN_PATHS (liveness and readiness probes). It is ASGI middleware rather than a
route dependency so that it also covers what is mounted on the app. Production requires it; the embedded
default (a single-machine sandbox) serves without it and says so on /healthz.

A browser cannot send a bearer header, so the read-only console signs a person in: a console page asked for
without a token answers 401 with a sign-in form; posting an active token to /console/sign-in sets a session
cookie (HttpOnly, SameSite=Strict, Path=/console, Secure over https). The cookie is not the token: it names
the token and its expiry under a MAC keyed by the token's stored digest (`tokens.console_session`), so any
replica checks it, and it ends after SESSION_SECONDS or when the token is revoked. It counts only for GET and
HEAD under /console, so it can read the console and nothing else: no decision, no other route.

The active tokens are read from the database at most every REFRESH_SECONDS, so a request costs no query and a
revocation takes effect within that time. If the database cannot be read, the last tokens read stay in force;
before any could be read, requests are answered 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from html import escape
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from governance.console.html import PAGE_POLICY, Markup, page
from governance.serving.tokens import SESSION_SECONDS, TokenStore, console_session, session_matches, token_matches

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
CONSOLE, SIGN_IN = "/console", "/console/sign-in"
COOKIE = "govern_console"
MAX_FORM_BYTES = 4096
REFRESH_SECONDS = 5.0
STALE_WAIT_SECONDS = 1.0
UNAUTHENTICATED = "this API needs a bearer token (Authorization: Bearer <token>); `govern token create` issues one"
CANNOT_CHECK = "credentials cannot be checked: a governance database cannot be reached; retry later"


class ActiveTokens:
    """The active tokens' digests, re-read when older than REFRESH_SECONDS: the request that finds them older waits
    for the re-read up to STALE_WAIT_SECONDS, then answers from the last tokens read (so a revoked token is refused
    within REFRESH_SECONDS of its revocation, however long the API was idle, and a slow or unreachable database
    delays a request by STALE_WAIT_SECONDS at most)."""

    def __init__(self, store: TokenStore, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.store, self.refresh_seconds = store, refresh_seconds
        self.digests: dict[str, str] | None = None
        self.read_at = float("-inf")
        self._refreshing: asyncio.Task | None = None

    async def current(self) -> dict[str, str] | None:
        if self.digests is None:
            await self._refresh()
        elif time.monotonic() - self.read_at >= self.refresh_seconds:
            if not self._busy():
                self._refreshing = asyncio.create_task(self._refresh())
            assert self._refreshing is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._refreshing), STALE_WAIT_SECONDS)
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
        if scope["type"] == "http" and scope["path"] == SIGN_IN:
            response = await self._sign_in(scope, receive)
            return await response(scope, receive, send)
        active = await self.tokens.current()
        if active is not None and _authenticated(scope, active):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        if active is None:
            return await JSONResponse({"error": CANNOT_CHECK}, 503)(scope, receive, send)
        if _reads_console(scope):
            return await _sign_in_page(401)(scope, receive, send)
        await JSONResponse({"error": UNAUTHENTICATED}, 401, headers={"WWW-Authenticate": "Bearer"})(
            scope, receive, send
        )

    async def _sign_in(self, scope: Scope, receive: Receive) -> Response:
        """The sign-in form (GET), or a posted token checked and kept as the console's session cookie."""
        if scope["method"] != "POST":
            return _sign_in_page(200)
        form = await _form(receive)
        if form is None:
            return _sign_in_page(413, "The form is larger than a token.")
        active = await self.tokens.current()
        if active is None:
            return _sign_in_page(503, CANNOT_CHECK)
        session = console_session(form.get("token", [""])[0].strip(), active, time.time())
        if session is None:
            log.warning("console sign-in refused: not an active token")  # the token itself is never logged
            return _sign_in_page(401, "That is not an active token.")
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = f"{COOKIE}={session}; Path={CONSOLE}; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict{secure}"
        return RedirectResponse(f"{CONSOLE}/", 303, headers={"set-cookie": cookie})


def _authenticated(scope: Scope, active: dict[str, str]) -> bool:
    """An active bearer token, or (for reading the console) an unexpired session of one."""
    token, session = _bearer(scope), _console_cookie(scope)
    if token is not None:
        return token_matches(token, active)
    return session is not None and session_matches(session, active, time.time())


def _reads_console(scope: Scope) -> bool:
    path = scope["path"]
    return scope["method"] in ("GET", "HEAD") and (path == CONSOLE or path.startswith(f"{CONSOLE}/"))


def _console_cookie(scope: Scope) -> str | None:
    """The console's session cookie, for reading the console only."""
    if scope["type"] != "http" or not _reads_console(scope):
        return None
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            try:
                morsel = SimpleCookie(value.decode("latin-1")).get(COOKIE)
            except CookieError:
                return None
            return morsel.value if morsel else None
    return None


async def _form(receive: Receive) -> dict[str, list[str]] | None:
    """A URL-encoded form body; None when it is longer than MAX_FORM_BYTES (the rest is not read)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            return None
        if not message.get("more_body", False):
            return parse_qs(body.decode("utf-8", errors="replace"))


def _sign_in_page(status: int, problem: str = "") -> HTMLResponse:
    form = Markup(
        f'<form method="post" action="{SIGN_IN}"><label>API token '
        '<input type="password" name="token" autocomplete="off" required></label> '
        '<button type="submit">Sign in</button></form>'
        '<p class="muted">A token from <code>govern token create</code>. The browser keeps a session, not the '
        f"token, for the console's pages only, for {SESSION_SECONDS // 3600} hours; revoking the token signs out "
        "everyone using it.</p>"
    )
    notice = Markup(f'<p class="bad">{escape(problem)}</p>') if problem else ""
    return HTMLResponse(
        page(CONSOLE, "Sign in to the console", notice, form), status, headers={"content-security-policy": PAGE_POLICY}
    )


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None
