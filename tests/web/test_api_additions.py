"""The API's additions for the site: the not_scored status, the scorecard CSV, metric
sparklines and the analyses Atom feed. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.scorecards.schemas import SCORECARD_CSV_COLUMNS
from tests._data import admin_headers, days, insert_values, parse_csv, put_department, put_metric

AS_OF = "2026-05-16"  # week window 2026-05-04..2026-05-10
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def ops(client: TestClient, session: Session) -> dict[str, str]:
    """A department with one metric of each status this week."""
    admin = admin_headers(session)
    put_department(client, admin, "ops", "Operations")
    put_metric(client, admin, "good", "ops", name="Good")  # pooled ratio, target 0.9
    put_metric(client, admin, "bad", "ops", name="Bad")
    put_metric(client, admin, "quiet", "ops", name="Quiet")  # no values at all
    put_metric(client, admin, "stale", "ops", name="Stale")  # nothing since January
    put_metric(  # zero events against a target: target / 0 has no score
        client,
        admin,
        "zero-events",
        "ops",
        name="Zero events",
        aggregation="sum",
        direction="lower_is_better",
        targets=[{"effective_from": "2000-01-01", "value": 5.0}],
    )
    span = days("2026-04-01", 45)
    insert_values(session, "good", [{"date": d, "numerator": 10, "denominator": 10} for d in span])
    insert_values(session, "bad", [{"date": d, "numerator": 5, "denominator": 10} for d in span])
    insert_values(session, "zero-events", [{"date": d, "value": 0.0} for d in span])
    insert_values(
        session,
        "stale",
        [{"date": d, "numerator": 1, "denominator": 2} for d in days("2026-01-01", 10)],
    )
    return admin


def test_scorecard_status_tells_not_scored_from_no_data(
    client: TestClient, ops: dict[str, str]
) -> None:
    card = client.get(f"/v1/scorecards/ops?as_of={AS_OF}").json()
    status = {m["metric"]: m["status"] for m in card["metrics"]}
    assert status == {
        "bad": "below_target",
        "good": "above_target",
        "quiet": "no_data",
        "stale": "no_data",
        "zero-events": "not_scored",
    }
    latest = {m["metric"]: m["latest"] for m in card["metrics"]}
    assert latest["stale"] == {"date": "2026-01-10", "value": 0.5}  # found beyond recent days
    assert latest["quiet"] is None and latest["good"] == {"date": "2026-05-15", "value": 1.0}
    zero = next(m for m in card["metrics"] if m["metric"] == "zero-events")
    assert zero["week"] is None and zero["latest"] == {"date": "2026-05-15", "value": 0.0}
    # the page says the same, in words and with a shape
    html = client.get(f"/departments/ops?as_of={AS_OF}").text
    assert (
        '<span class="status status-not_scored"><span class="shape" aria-hidden="true">◆</span>'
        " Not scored</span>" in html
    )
    assert "status-no_data" in html and "status-above_target" in html
    for slug, words in (("zero-events", "Not scored"), ("quiet", "No data"), ("bad", "Below")):
        page = client.get(f"/metrics/{slug}?as_of={AS_OF}").text
        assert f"</span> {words}" in page.split('id="now-heading"')[1].split("</h2>")[0], slug


def test_scorecard_csv_is_the_json_per_metric(client: TestClient, ops: dict[str, str]) -> None:
    doc = client.get(f"/v1/scorecards/ops?as_of={AS_OF}").json()
    r = client.get(f"/v1/scorecards/ops.csv?as_of={AS_OF}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="scorecard-ops-{AS_OF}.csv"'
    rows = parse_csv(r.content)
    assert tuple(rows[0]) == SCORECARD_CSV_COLUMNS
    assert [row[0] for row in rows[1:]] == [m["metric"] for m in doc["metrics"]]
    for row, m in zip(rows[1:], doc["metrics"], strict=True):
        cells = dict(zip(SCORECARD_CSV_COLUMNS, row, strict=True))
        assert cells["status"] == m["status"] and cells["name"] == m["name"]
        assert cells["latest_date"] == (m["latest"]["date"] if m["latest"] else "")
        for w in ("day", "week", "month", "quarter"):
            assert (float(cells[w]) if cells[w] else None) == m[w]
    accept = client.get(f"/v1/scorecards/ops?as_of={AS_OF}", headers={"Accept": "text/csv"})
    assert accept.content == r.content
    json_etag = client.get(f"/v1/scorecards/ops?as_of={AS_OF}").headers["etag"]
    assert r.headers["etag"] != json_etag
    assert client.get("/v1/scorecards/nope.csv").status_code == 404


def test_sparkline_is_an_svg_of_the_scorecards_trend(
    client: TestClient, ops: dict[str, str]
) -> None:
    r = client.get(f"/v1/metrics/bad/sparkline.svg?as_of={AS_OF}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(r.text)
    svg = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{svg}svg" and root.get("role") == "img"
    title = root.find(f"{svg}title")
    desc = root.find(f"{svg}desc")
    assert title is not None and title.text is not None and title.text.startswith("Bad")
    trend = next(
        m
        for m in client.get(f"/v1/scorecards/ops?as_of={AS_OF}").json()["metrics"]
        if m["metric"] == "bad"
    )["trend"]
    assert desc is not None and desc.text is not None
    for point in trend:
        score = "no score" if point["score"] is None else f"{point['score']:.3f}".rstrip("0")
        assert f"week of {point['week_start']}: {score}" in desc.text
    assert desc.text.count("week of") == 12
    four = client.get(f"/v1/metrics/bad/sparkline.svg?as_of={AS_OF}&weeks=4").text
    assert ET.fromstring(four).find(f"{svg}desc").text.count("week of") == 4  # type: ignore[union-attr]
    again = client.get(
        f"/v1/metrics/bad/sparkline.svg?as_of={AS_OF}", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304
    for bad in ("weeks=0", "weeks=105", "weeks=x", "as_of=2026-02-30"):
        r = client.get(f"/v1/metrics/bad/sparkline.svg?{bad}")
        assert r.status_code == 400, bad
        assert r.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/metrics/nope/sparkline.svg").status_code == 404


def test_atom_feed_lists_the_analyses_newest_first(client: TestClient, session: Session) -> None:
    admin = admin_headers(session)
    for slug, day in (("older", "2026-01-05"), ("newer", "2026-03-01"), ("also-new", "2026-03-01")):
        body = {
            "title": f"The {slug} one",
            "summary": "Short & sweet",
            "body_markdown": "# Heading\n\nSome <b>text</b>.",
            "published_on": day,
            "tags": ["cityscore"],
        }
        assert client.put(f"/v1/analyses/{slug}", json=body, headers=admin).status_code == 201
    r = client.get("/v1/analyses.atom")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/atom+xml"
    feed = ET.fromstring(r.content)
    assert feed.tag == f"{ATOM}feed"
    for tag in ("id", "title", "updated", "author"):
        assert feed.find(f"{ATOM}{tag}") is not None, tag
    entries = feed.findall(f"{ATOM}entry")
    api = [a["slug"] for a in client.get("/v1/analyses").json()["data"]]
    assert api == ["also-new", "newer", "older"]
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert ids == [f"http://testserver/analyses/{slug}" for slug in api]
    first = entries[0]
    assert first.findtext(f"{ATOM}summary") == "Short & sweet"
    content = first.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    assert "<h1>Heading</h1>" in (content.text or "") and "<b>" not in (content.text or "")
    assert first.findtext(f"{ATOM}published") == "2026-03-01T00:00:00Z"
    updated = first.findtext(f"{ATOM}updated") or ""
    assert dt.datetime.fromisoformat(updated.replace("Z", "+00:00")).tzinfo is not None
    again = client.get("/v1/analyses.atom", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    page = client.get("/analyses").text
    assert '<link rel="alternate" type="application/atom+xml"' in page
