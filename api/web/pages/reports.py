"""``/reports/weekly?week=`` — the printable report for the weekly cabinet meeting."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response

from api.cityscore import publish, reads
from api.deps import SessionDep, SettingsDep
from api.http.params import parse_date
from api.metrics import service as metrics_service
from api.scorecards import service as scorecards_service
from api.scoring.windows import windows_as_of
from api.web import render
from api.web.pages import common

router = APIRouter()
MOVERS = 8


def report_week(raw: str | None, today: dt.date) -> dt.date:
    """The Monday of the reported week: the week holding ``raw``, else the last complete one."""
    day = parse_date("week", raw)
    if day is None:
        return windows_as_of(today)["week"].start
    return day - dt.timedelta(days=day.weekday())


def movers(session: Any, as_of: dt.date) -> list[dict[str, Any]]:
    """Every metric's week score this week and the week before, biggest change first."""
    ids = metrics_service.ids_by_slug(session)
    now = reads.scores_for(session, list(ids.values()), as_of)
    before = reads.scores_for(session, list(ids.values()), as_of - dt.timedelta(days=7))
    out: list[dict[str, Any]] = []
    for slug, metric_id in ids.items():
        a, b = now[metric_id]["week"].score, before[metric_id]["week"].score
        if a is not None and b is not None:
            out.append({"metric": slug, "week": a, "previous": b, "change": a - b})
    out.sort(key=lambda r: (-abs(r["change"]), r["metric"]))
    return out


def report_context(session: Any, week: dt.date) -> dict[str, Any]:
    as_of = week + dt.timedelta(days=7)  # the week window as of the Monday after is this week
    doc = publish.cityscore_document(session, as_of)
    listing = scorecards_service.listing(session, as_of)
    rows = [dict(zip(listing.columns, r, strict=True)) for r in listing.fetch(None, None)]
    cards = scorecards_service.scorecards(session, as_of, trend_weeks=0)
    names = {m["metric"]: m["name"] for card in cards for m in card["metrics"]}
    below = sorted(
        (
            {**m, "department": card["department"], "department_name": card["name"]}
            for card in cards
            for m in card["metrics"]
            if m["status"] == "below_target"
        ),
        key=lambda m: (m["week"], m["metric"]),
    )
    return {
        "week": week,
        "week_end": week + dt.timedelta(days=6),
        "as_of": as_of,
        "doc": doc,
        "rows": rows,
        "cards": [c for c in cards if c["metrics"]],
        "movers": movers(session, as_of)[:MOVERS],
        "names": names,
        "below": below,
        "previous": week - dt.timedelta(days=7),
    }


@router.get("/reports/weekly")
def weekly_report(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    raw = request.query_params.get("week")
    today = settings.today()
    week = report_week(raw, today)
    latest = windows_as_of(today)["week"].start

    def context() -> dict[str, Any]:
        following = week + dt.timedelta(days=7)
        return {**report_context(session, week), "next": following if following <= latest else None}

    return render.page(
        request,
        common.version(session, settings, raw is not None),
        "report.html",
        context,
        extra=week.isoformat(),
    )
