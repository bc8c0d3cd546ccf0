"""Request-scoped dependencies as ``Annotated`` aliases: the session, settings and API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.changes.cache import BUMPED_KEY, SESSION_KEY, SINCE_KEY
from api.errors import Forbidden, TooManyRequests, Unauthorized
from api.keys import service as keys_service
from api.settings import Settings
from db.models import ApiKey
from db.session import DETACHED

PRIMARY_ONLY = ("/v1/ingest", "/v1/audit", "/readyz", "/internal")


def is_public_read(request: Request) -> bool:
    """A GET any replica may answer (receipts, the audit log and health read the primary)."""
    return request.method in ("GET", "HEAD") and not request.url.path.startswith(PRIMARY_ONLY)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request, and the one rule for who commits: here, once a write's
    handler has returned (before its answer is sent, so an acknowledged write is durable).
    Handlers and services never commit; a handler that raises leaves everything rolled back.

    Function-scoped: the session is closed as soon as the handler returns, before the answer
    is sent, so a slow client never holds a store connection. A streamed download takes the
    session over (``api.http.respond.detach_session``) and closes it when its export ends.
    ``async`` to skip a threadpool hop when there is nothing to close; closing a session
    that holds a connection is a round trip, so it runs in the threadpool, never on the loop.
    """
    reads = getattr(request.app.state, "read_session_factory", None)
    factory = reads if reads is not None and is_public_read(request) else None
    session: Session = (factory or request.app.state.session_factory)()
    request.state.db_session = session
    versions = getattr(request.app.state, "versions", None)
    writing = request.method not in ("GET", "HEAD")
    if versions is not None and not writing:
        probe = getattr(request.app.state, "data_version", None)
        if probe is not None and probe.changed():  # SQLite: a commit since the last read
            versions.invalidate()
        session.info[SESSION_KEY] = versions  # versions and slugs from memory when it can
        session.info[SINCE_KEY] = versions.generation
    try:
        yield session
        if writing and session.in_transaction():
            await run_in_threadpool(session.commit)
            if versions is not None and session.info.get(BUMPED_KEY):
                versions.invalidate()  # this worker sees its own write at once
    finally:
        if not session.info.get(DETACHED):
            if session.in_transaction():
                await run_in_threadpool(session.close)
            else:
                session.close()


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


# Declares the bearer scheme in OpenAPI (the Authorize button of /docs) on every operation
# that takes a key; the header itself is checked below, with this API's own 401 messages.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    description="An API key from `cityscore keys create`: `Authorization: Bearer cs_...`.",
    auto_error=False,
)


def get_api_key(
    request: Request,
    session: SessionDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
) -> ApiKey:
    checked: ApiKey | None = request.scope.get("state", {}).get("api_key")
    if checked is not None:  # writes are authenticated before their body is read
        request.state.key_id = checked.id  # for the request's log line (never the key)
        return checked
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        _count_failure(request)
        raise Unauthorized(
            "An API key is required: send 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="cityscore"'},
        )
    key = keys_service.authenticate(session, token.strip())
    if key is None:
        _count_failure(request)
        raise Unauthorized(
            "The API key is invalid, expired or revoked.",
            headers={"WWW-Authenticate": 'Bearer realm="cityscore", error="invalid_token"'},
        )
    request.state.key_id = key.id  # for the request's log line (the id, never the key)
    return key


def _count_failure(request: Request) -> None:
    """A keyed read without a valid key counts against its address, as a write does in
    ``WriteGuard``: past ``FAILED_AUTH_PER_MINUTE`` it is a 429."""
    over = getattr(request.app.state, "failed_auth", None)
    client = request.client.host if request.client else "unknown"
    if over is not None and over(client):
        raise TooManyRequests(
            "Too many requests with invalid API keys from this address; retry later.",
            headers={"Retry-After": "60"},
        )


def get_admin_key(key: Annotated[ApiKey, Depends(get_api_key)]) -> ApiKey:
    if not key.admin:
        raise Forbidden("This action needs an analytics-team (admin) key.")
    return key


DepartmentKey = Annotated[ApiKey, Depends(get_api_key)]
AdminKey = Annotated[ApiKey, Depends(get_admin_key)]
