"""The API's own pages (`/docs`, `/redoc`) without the network.

Their Swagger UI and ReDoc assets come from the pinned `fastapi-offline` package, served by the API under
`DOCS_ASSETS`. ReDoc's bundle still names a logo on cdn.redoc.ly; the pages' Content-Security-Policy keeps
the browser from fetching anything that is not the API's own (the page renders without it).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_ASSETS = "/docs-assets"
PAGES = ("/docs", "/redoc")
# Swagger UI and ReDoc start from an inline script and style; ReDoc searches in a blob worker.
POLICY = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


class SameOriginPages:
    """Adds the Content-Security-Policy above to the API pages' answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in PAGES:
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"content-security-policy", POLICY)]
            await send(message)

        await self.app(scope, receive, with_policy)
