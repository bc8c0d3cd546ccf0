"""What every page module shares: the as-of date, data versions and lookups by slug."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session
from starlette.requests import Request

from api.changes import service as changes
from api.departments import service as departments_service
from api.http.caching import Version
from api.http.params import parse_date
from api.settings import Settings

DATA_SCOPES = ("scores", "metrics", "departments", "values")


def as_of(request: Request, settings: Settings, name: str = "as_of") -> tuple[dt.date, bool]:
    """The page's as-of date (400 when malformed) and whether the client chose it."""
    raw = request.query_params.get(name)
    day = parse_date(name, raw)
    return (day, True) if day is not None else (settings.today(), False)


def version(
    session: Session, settings: Settings, chosen: bool, scopes: tuple[str, ...] = DATA_SCOPES
) -> Version:
    """The data version behind a page; pages that default to today also change at midnight."""
    return changes.dated_version(session, settings.today_began(), chosen, *scopes)


def departments(session: Session) -> dict[str, dict[str, Any]]:
    """Every department by slug, as the API publishes it."""
    listing = departments_service.listing(session)
    return {
        row[0]: dict(zip(listing.columns, row, strict=True)) for row in listing.fetch(None, None)
    }
