"""``/analyses`` and ``/analyses/{slug}`` — the analytics team's write-ups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.analyses import service as analyses_service
from api.changes import service as changes
from api.deps import SessionDep, SettingsDep
from api.metrics import service as metrics_service
from api.web import render
from api.web.pages import common

router = APIRouter()
SCOPES = ("analyses", "metrics", "departments")


@router.get("/analyses")
def analysis_list(request: Request, session: SessionDep) -> Response:
    def context() -> dict[str, Any]:
        listing = analyses_service.listing(session, department=None, tag=None, q=None)
        rows = [dict(zip(listing.columns, r, strict=True)) for r in listing.fetch(None, None)]
        return {"rows": rows, "departments": common.departments(session)}

    return render.page(request, changes.version(session, *SCOPES), "analyses.html", context)


@router.get("/analyses/{slug}")
def analysis_page(
    request: Request, session: SessionDep, settings: SettingsDep, slug: str
) -> Response:
    doc = analyses_service.get(session, slug)  # 404 before any 304

    def context() -> dict[str, Any]:
        today = settings.today()
        metrics = {m: metrics_service.get_public(session, m, today)["name"] for m in doc["metrics"]}
        return {"a": doc, "metrics": metrics, "departments": common.departments(session)}

    return render.page(request, changes.version(session, *SCOPES), "analysis.html", context)
