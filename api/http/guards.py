"""What a client can hold on to, bounded: write bodies, slow sockets and bad keys.

``WriteGuard`` (pure ASGI, in front of the app):
- a write (POST/PUT/PATCH/DELETE) is authenticated *before* its body is read: no key, a
  malformed or repeated ``Authorization`` header, or an unknown key is answered at once, and
  failed authentications are limited per client address;
- a write body is capped (``Content-Length`` checked up front, the stream counted as it
  arrives) and must arrive within ``body_timeout`` seconds (408 otherwise), so a client that
  sends one byte of a declared thousand holds no store connection and no worker for long;
- every ``send`` must complete within ``send_timeout`` seconds: a reader that stops reading
  is dropped instead of holding the response open for ever.
The key found is handed to the route (``scope["state"]["api_key"]``) so it is looked up once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import HTTPException
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import (
    APIError,
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    api_error_response,
)

log = logging.getLogger("cityscore.guards")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WRITE_PREFIX = "/v1/"  # CKAN's action API takes POSTs too, but those are public reads


def is_write(scope: Scope) -> bool:
    return scope.get("method") in WRITE_METHODS and scope.get("path", "").startswith(WRITE_PREFIX)


BEARER_CHALLENGE = 'Bearer realm="cityscore"'


class SlowClient(Exception):
    """The client did not take a response chunk within the send timeout."""


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str:
    """The token of the one ``Authorization: Bearer`` header (scheme case-insensitive)."""
    values = [v for k, v in headers if k == b"authorization"]
    if len(values) > 1:
        raise BadRequest("Send exactly one Authorization header.")
    header = values[0].decode("latin-1").strip() if values else ""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "An API key is required: send 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": BEARER_CHALLENGE},
        )
    return token


class WriteGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Callable[[str], Any],
        body_limit: Callable[[str], int],
        body_timeout: float,
        send_timeout: float,
        failed_auth: Callable[[str], bool],
    ):
        self.app = app
        self.authenticate = authenticate  # token -> key or None (blocking: run in a thread)
        self.body_limit = body_limit  # path -> the largest body accepted
        self.body_timeout = body_timeout
        self.send_timeout = send_timeout
        self.failed_auth = failed_auth  # client address -> whether it is over its limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guarded_send = self._bounded_send(send)
        try:
            if is_write(scope):
                try:
                    receive = await self._admit(scope, receive)
                except APIError as exc:
                    await api_error_response(exc)(scope, receive, guarded_send)
                    return
            await self.app(scope, receive, guarded_send)
        except SlowClient:
            log.info("dropped a client that stopped reading: %s %s", scope["method"], scope["path"])

    async def _admit(self, scope: Scope, receive: Receive) -> Receive:
        headers = scope.get("headers", [])
        limit = self.body_limit(scope["path"])
        declared = next((v for k, v in headers if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The body is larger than the {limit}-byte limit.")
        encoding = next((v for k, v in headers if k == b"content-encoding"), b"identity")
        if encoding.strip().lower() != b"identity":  # bodies are read as sent, never inflated
            shown = encoding.decode("latin-1")[:50]
            raise UnsupportedMediaType(
                f"Content-Encoding '{shown}' is not accepted: send the body uncompressed."
            )
        token = bearer_token(headers)
        try:
            key = await run_in_threadpool(self.authenticate, token)
        except SQLAlchemyError as exc:  # outside the app's handlers: map the store's failure here
            log.warning("key lookup failed: %s", exc)
            raise ServiceUnavailable("The data store is unavailable.") from None
        if key is None:
            client = (scope.get("client") or ("unknown", 0))[0]
            if self.failed_auth(client):
                raise TooManyRequests(
                    "Too many requests with invalid API keys from this address; retry later.",
                    headers={"Retry-After": "60"},
                )
            raise Unauthorized(
                "The API key is invalid, expired or revoked.",
                headers={"WWW-Authenticate": BEARER_CHALLENGE + ', error="invalid_token"'},
            )
        scope.setdefault("state", {})["api_key"] = key
        return self._bounded_receive(receive, limit)

    def _bounded_receive(self, receive: Receive, limit: int) -> Receive:
        deadline = time.monotonic() + self.body_timeout
        size = 0

        async def bounded() -> Message:
            nonlocal size
            remaining = deadline - time.monotonic()
            with anyio.move_on_after(max(remaining, 0)) as scope:
                message = await receive()
            if scope.cancelled_caught:
                raise HTTPException(408, f"The body did not arrive within {self.body_timeout:g} s.")
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise HTTPException(413, f"The body is larger than the {limit}-byte limit.")
            return message

        return bounded

    def _bounded_send(self, send: Send) -> Send:
        async def bounded(message: Message) -> None:
            with anyio.move_on_after(self.send_timeout) as scope:
                await send(message)
            if scope.cancelled_caught:
                raise SlowClient()

        return bounded
