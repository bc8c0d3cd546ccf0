"""``/departments`` and ``/departments/{slug}`` — every department's scorecard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.departments import service as departments_service
from api.deps import SessionDep, SettingsDep
from api.scorecards import service as scorecards_service
from api.web import charts, render
from api.web.pages import common

router = APIRouter()
SCOPES = ("departments", "scores", "metrics", "values")


@router.get("/departments")
def department_list(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    day, chosen = common.as_of(request, settings)

    def context() -> dict[str, Any]:
        listing = scorecards_service.listing(session, day)
        rows = [dict(zip(listing.columns, r, strict=True)) for r in listing.fetch(None, None)]
        return {"rows": rows, "as_of": day, "chosen": chosen}

    return render.page(
        request,
        common.version(session, settings, chosen, SCOPES),
        "departments.html",
        context,
        extra=day.isoformat(),
    )


def sparklines(doc: dict[str, Any]) -> dict[str, str]:
    """Each metric's 12-week trend as inline SVG, from the scorecard's own trend numbers."""
    return {
        m["metric"]: charts.trend_sparkline(
            f"trend-{m['metric']}",
            m["name"],
            [(t["week_start"], t["score"]) for t in m["trend"]],
        )
        for m in doc["metrics"]
    }


@router.get("/departments/{slug}")
def department_page(
    request: Request, session: SessionDep, settings: SettingsDep, slug: str
) -> Response:
    day, chosen = common.as_of(request, settings)
    dept = departments_service.to_public(departments_service.get(session, slug))  # 404 first

    def context() -> dict[str, Any]:
        doc = scorecards_service.scorecard(session, slug, day)
        return {
            "dept": dept,
            "doc": doc,
            "sparks": sparklines(doc),
            "weeks": [t["week_start"] for t in doc["metrics"][0]["trend"]]
            if doc["metrics"]
            else [],
            "as_of": day,
            "chosen": chosen,
        }

    return render.page(
        request,
        common.version(session, settings, chosen, SCOPES),
        "department.html",
        context,
        extra=day.isoformat(),
    )
