"""Content negotiation: JSON by default, CSV by a ``.csv`` suffix or ``Accept: text/csv``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BadRequest, api_error_response

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


class CsvSuffixMiddleware:
    """Serve ``/v1/anything.csv`` by the route of ``/v1/anything``, marked as a CSV request."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith(".csv"):
            scope = dict(scope)
            scope["path"] = scope["path"][:-4]
            scope["raw_path"] = scope["path"].encode()
            scope.setdefault("state", {})["csv_suffix"] = True
        await self.app(scope, receive, send)


def accept_prefers_csv(accept: str) -> bool:
    best_q, best = -1.0, ""
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if media in ("text/csv", "application/json", "application/*", "*/*", "text/*") and (
            q > best_q or (q == best_q and media == "text/csv")
        ):
            best_q, best = q, media
    return best == "text/csv" and best_q > 0


def wants_csv(request: Request) -> bool:
    if request.scope.get("state", {}).get("csv_suffix"):
        return True
    return accept_prefers_csv(request.headers.get("accept", ""))


def bad_request(scope: Scope, detail: str) -> Any:
    """A 400 in the format the path's clients read: a compatibility layer registers its own
    in ``app.state.error_formats`` as ``(path prefix, build(scope, detail))``."""
    app = scope.get("app")
    for prefix, build in getattr(getattr(app, "state", None), "error_formats", ()):
        if scope["path"].startswith(prefix):
            return build(scope, detail)
    return api_error_response(BadRequest(detail))


class NulGuardMiddleware:
    """A NUL byte in the path or query can never name anything; PostgreSQL refuses it in text
    parameters. Answer 400 at the door instead of letting a driver error become a 500."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower()
        ):
            await bad_request(scope, "The URL contains a NUL byte.")(scope, receive, send)
            return
        await self.app(scope, receive, send)


class HeadMiddleware:
    """Answer HEAD like GET without a body (curl -I, link checkers, caches revalidating)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        scope["method"] = "GET"
        finished = False

        async def send_headers_only(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body":
                if finished:
                    return
                finished = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, send_headers_only)
