"""``/embed/cityscore`` — a small CityScore widget for other sites' iframes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.cityscore import publish
from api.deps import SessionDep, SettingsDep
from api.web import render
from api.web.pages import common

router = APIRouter()


@router.get("/embed/cityscore")
def embed(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    day, chosen = common.as_of(request, settings)
    return render.page(
        request,
        common.version(session, settings, chosen, ("scores",)),
        "embed.html",
        lambda: {"doc": publish.cityscore_document(session, day), "as_of": day},
        extra=day.isoformat(),
    )
