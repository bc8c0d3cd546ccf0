"""Request-scoped dependencies as ``Annotated`` aliases: the session, settings and API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from api.errors import Forbidden, Unauthorized
from api.keys import service as keys_service
from api.settings import Settings
from db.models import ApiKey


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request. Writers commit explicitly before they answer (an acknowledged
    write is durable); whatever is left uncommitted is rolled back here.

    ``async`` only to skip a threadpool hop: creating a Session does no I/O (the connection is
    checked out by the handler, in the threadpool), and closing one is a quick rollback."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.close()


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_api_key(request: Request, session: SessionDep) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "An API key is required: send 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="cityscore"'},
        )
    key = keys_service.authenticate(session, token.strip())
    if key is None:
        raise Unauthorized(
            "The API key is invalid, revoked or expired.",
            headers={"WWW-Authenticate": 'Bearer realm="cityscore", error="invalid_token"'},
        )
    request.state.key_id = key.id  # for the request's log line (the id, never the key)
    return key


def get_admin_key(key: Annotated[ApiKey, Depends(get_api_key)]) -> ApiKey:
    if not key.admin:
        raise Forbidden("This action needs an analytics-team (admin) key.")
    return key


DepartmentKey = Annotated[ApiKey, Depends(get_api_key)]
AdminKey = Annotated[ApiKey, Depends(get_admin_key)]
