"""``/`` — the scoreboard: CityScore for the four windows and every CityScore metric."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response

from api.cityscore import publish
from api.deps import SessionDep, SettingsDep
from api.metrics import service as metrics_service
from api.scorecards import service as scorecards_service
from api.web import charts, render
from api.web.pages import common

router = APIRouter()
HISTORY_DAYS = 91


def scoreboard_context(session: Any, day: Any) -> dict[str, Any]:
    doc = publish.cityscore_document(session, day)
    ids = metrics_service.ids_by_slug(session)
    week_data = scorecards_service.with_week_data(
        session, [ids[m["metric"]] for m in doc["metrics"]], day
    )
    for m in doc["metrics"]:
        m["status"] = scorecards_service.status(m["week"]["score"], ids[m["metric"]] in week_data)
    counts = {s: 0 for s in render.STATUS_TEXT}
    for m in doc["metrics"]:
        counts[m["status"]] += 1
    return {
        "doc": doc,
        "departments": common.departments(session),
        "counts": counts,
        "history": history(session, day),
    }


def history(session: Any, day: dt.date) -> dict[str, Any]:
    """CityScore's week, month and quarter scores for the last 91 as-of dates, as a chart and
    as the rows of ``/v1/cityscore/history`` for the same range."""
    start = day - dt.timedelta(days=HISTORY_DAYS - 1)
    listing = publish.history_listing(session, start, day)
    rows = [dict(zip(listing.columns, r, strict=True)) for r in listing.fetch(None, None)]
    chart = charts.window_scores(
        "history-chart",
        f"CityScore for each as-of date from {start} to {day}",
        "CityScore",
        rows,
        y_label="CityScore",
    )
    return {
        "rows": rows,
        "wide": chart["wide"],
        "narrow": chart["narrow"],
        "params": {"start": start, "end": day},
    }


@router.get("/")
def scoreboard(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    day, chosen = common.as_of(request, settings)
    return render.page(
        request,
        common.version(session, settings, chosen),
        "scoreboard.html",
        lambda: {**scoreboard_context(session, day), "as_of": day, "chosen": chosen},
        extra=day.isoformat(),
    )
