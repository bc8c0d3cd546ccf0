"""``/metrics`` (the catalogue) and ``/metrics/{slug}`` (definition, charts, downloads)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response

from api.cityscore import publish
from api.deps import SessionDep, SettingsDep
from api.errors import BadRequest
from api.metrics import service as metrics_service
from api.scorecards import service as scorecards_service
from api.scoring.windows import windows_as_of
from api.values import service as values_service
from api.web import charts, render, words
from api.web.pages import common

router = APIRouter()
INTERVALS = ("day", "week", "month")
SCORE_DAYS = 91


@router.get("/metrics")
def catalogue(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    q = request.query_params.get("q") or None
    department = request.query_params.get("department") or None
    today = settings.today()

    def context() -> dict[str, Any]:
        listing = metrics_service.listing(session, today, department=department, q=q)
        rows = [dict(zip(listing.columns, r, strict=True)) for r in listing.fetch(None, None)]
        return {
            "rows": rows,
            "q": q or "",
            "department": department or "",
            "departments": common.departments(session),
        }

    version = common.version(session, settings, False, ("metrics", "departments"))
    return render.page(request, version, "metrics.html", context, extra=today.isoformat())


def value_range(interval: str, day: dt.date) -> tuple[dt.date, dt.date]:
    """What the values chart covers as of ``day``: 90 days, 52 complete weeks or 24 months."""
    windows = windows_as_of(day)
    if interval == "day":
        return day - dt.timedelta(days=90), day - dt.timedelta(days=1)
    if interval == "week":
        return windows["week"].start - dt.timedelta(weeks=51), windows["week"].end
    month = windows["month"].start
    first = dt.date(month.year - 2 + (month.month == 12), month.month % 12 + 1, 1)
    return first, windows["month"].end


def _day(value: dt.date | str) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def target_on(targets: list[dict[str, Any]], day: dt.date) -> float | None:
    found = None
    for t in targets:
        if t["effective_from"] <= day:
            found = t["value"]
    return found


def _values(session: Any, metric: dict[str, Any], interval: str, day: dt.date) -> dict[str, Any]:
    start, end = value_range(interval, day)
    metric_id, aggregation = values_service.metric_ref(session, metric["slug"])
    listing = values_service.metric_values_listing(
        session, metric_id, aggregation, metric["slug"], start=start, end=end, interval=interval
    )
    rows = [dict(zip(listing.columns, r, strict=True)) for r in listing.fetch(None, None)]
    for r in rows:  # daily rows may come straight from the driver with dates as text
        r["start"], r["end"] = _day(r["start"]), _day(r["end"])
    labels = [
        r["start"].isoformat() if interval == "day" else r["start"].strftime("%b %d %Y")
        for r in rows
    ]
    target = [target_on(metric["targets"], r["end"]) for r in rows]
    unit = metric["unit"] or "value"
    chart = charts.both_sizes(
        ident="values-chart",
        title=f"{metric['name']}: {interval}ly values from {start} to {end}",
        desc=f"{len(rows)} {interval}s with data; "
        + (
            f"the dashed line is the target ({render.number(target[-1])})."
            if any(t is not None for t in target)
            else "no fixed target (scored against its history)."
        ),
        x_labels=labels,
        lines=[charts.Line(unit, [r["value"] for r in rows])],
        target=target if metric["reference"] == "target" else None,
        y_label=unit,
        x_label=f"{interval} starting",
    )
    params = {"start": start, "end": end, "interval": interval}
    return {"rows": rows, "chart": chart, "params": params, "targets": target}


def _scores(session: Any, metric: dict[str, Any], day: dt.date) -> dict[str, Any]:
    start, end = day - dt.timedelta(days=SCORE_DAYS - 1), day
    metric_id = metrics_service.metric_id(session, metric["slug"])
    listing = publish.metric_scores_listing(session, metric_id, metric["slug"], start, end)
    rows = [dict(zip(listing.columns, r, strict=True)) for r in listing.fetch(None, None)]
    chart = charts.window_scores(
        "scores-chart",
        f"{metric['name']}: window scores for each as-of date from {start} to {end}",
        "scores",
        rows,
        target_label="target",
        y_label="score",
    )
    return {"rows": rows, "chart": chart, "params": {"start": start, "end": end}}


def dataset_jsonld(request: Request, metric: dict[str, Any], city: str) -> dict[str, Any]:
    """The metric's daily values as a schema.org ``Dataset`` (for search engines' dataset
    search), with its CSV and JSON downloads."""
    base = str(request.base_url).rstrip("/")
    values = f"{base}/v1/metrics/{metric['slug']}/values"
    updated = metric.get("updated_at")
    return {
        "@context": "https://schema.org",
        "@type": "Dataset",
        "name": f"{metric['name']}: daily values",
        "description": metric.get("description") or f"Daily values of {metric['name']}.",
        "url": f"{base}/metrics/{metric['slug']}",
        "identifier": metric["slug"],
        "keywords": ["CityScore", "performance", str(metric["department"])],
        "creator": {"@type": "GovernmentOrganization", "name": city},
        "license": "https://opendatacommons.org/licenses/pddl/1-0/",
        "isAccessibleForFree": True,
        "dateModified": updated.isoformat() if isinstance(updated, dt.datetime) else updated,
        "distribution": [
            {"@type": "DataDownload", "encodingFormat": "text/csv", "contentUrl": values + ".csv"},
            {"@type": "DataDownload", "encodingFormat": "application/json", "contentUrl": values},
        ],
    }


@router.get("/metrics/{slug}")
def metric_page(
    request: Request, session: SessionDep, settings: SettingsDep, slug: str
) -> Response:
    day, chosen = common.as_of(request, settings)
    interval = request.query_params.get("interval") or "week"
    if interval not in INTERVALS:
        raise BadRequest("interval must be day, week or month.")
    metric = metrics_service.get_public(session, slug, day)  # 404 before any 304

    def context() -> dict[str, Any]:
        scores = _scores(session, metric, day)
        latest = scores["rows"][-1] if scores["rows"] else None
        week_data = scorecards_service.with_week_data(
            session, [metrics_service.metric_id(session, slug)], day
        )
        return {
            "metric": metric,
            "now": latest,
            "status": scorecards_service.status(
                latest["week"] if latest else None, bool(week_data)
            ),
            "windows": windows_as_of(day),
            "department": common.departments(session).get(metric["department"]),
            "explain": words.scoring_in_words(metric),
            "values": _values(session, metric, interval, day),
            "scores": scores,
            "interval": interval,
            "intervals": INTERVALS,
            "as_of": day,
            "chosen": chosen,
            "jsonld": dataset_jsonld(request, metric, settings.city_name),
        }

    return render.page(
        request,
        common.version(session, settings, chosen),
        "metric.html",
        context,
        extra=f"{day.isoformat()}|{interval}",
    )
