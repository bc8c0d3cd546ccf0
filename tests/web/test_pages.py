"""The site over HTTP on both stores: every page type is HTML with the API's caching and the
security headers, carries no inline code, stays under 100 KB with its CSS, shows the API's
numbers, and unknown pages are HTML 404s while /v1 keeps problem+json."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.demo import service as demo
from tests._data import admin_headers, put_department, put_metric

TODAY = dt.date(2026, 5, 16)
AS_OF = "2026-05-16"
METRIC = "311-call-center-performance"
PAGES = {
    "scoreboard": f"/?as_of={AS_OF}",
    "departments": f"/departments?as_of={AS_OF}",
    "department": f"/departments/311?as_of={AS_OF}",
    "metrics": "/metrics?q=on-time&department=public-works",
    "metric": f"/metrics/{METRIC}?as_of={AS_OF}",
    "metric-daily": f"/metrics/{METRIC}?as_of={AS_OF}&interval=day",
    "metric-monthly": f"/metrics/{METRIC}?as_of={AS_OF}&interval=month",
    "report": "/reports/weekly?week=2026-05-04",
    "analyses": "/analyses",
    "analysis": "/analyses/ems-ambulance-allocation",
    "about": "/about",
    "embed": f"/embed/cityscore?as_of={AS_OF}",
    "docs": "/docs",
    "redoc": "/redoc",
}


@pytest.fixture
def demo_data(session: Session) -> None:
    demo.load(session, years=1, metrics=23, today=TODAY)
    session.flush()


class Page(HTMLParser):
    """What the tests look for in a page: inline code, and each table's rows as text."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._caption: str | None = None
        self._in_caption = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "style" or "style" in names:
            self.inline.append(f"style on <{tag}>")
        # A JSON-LD data block is not code: browsers never run it and CSP does not apply.
        if tag == "script" and not names.get("src") and names.get("type") != "application/ld+json":
            self.inline.append("inline <script>")
        self.inline += [f"{k} on <{tag}>" for k in names if k.startswith("on")]
        if tag == "caption":
            self._in_caption, self._caption = True, names.get("id") or ""
        elif tag == "tr" and self._caption is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._caption is not None:
            self.tables.setdefault(self._caption, []).append(self._row)
            self._row = None
        elif tag == "table":
            self._caption = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def body_rows(page: Page, caption: str) -> list[list[str]]:
    return page.tables[caption][1:]  # without the header row


def shown(value: float | None) -> str:
    if value is None:
        return "—"
    digits = 3
    while value < 1 and f"{value:.{digits}f}".startswith("1.") and digits < 9:
        digits += 1
    return f"{value:.{digits}f}"


def test_every_page_type_is_cached_html_with_security_headers(
    client: TestClient, demo_data: None
) -> None:
    css = len(client.get("/static/site.css").content)
    for name, path in PAGES.items():
        r = client.get(path)
        assert r.status_code == 200, (name, r.text[:500])
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.text.startswith('<!doctype html>\n<html lang="en">')
        assert len(r.content) + css < 100_000, (name, len(r.content))
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp
        if name == "embed":
            assert "frame-ancestors *" in csp and "x-frame-options" not in r.headers
        else:
            assert "frame-ancestors 'none'" in csp and r.headers["x-frame-options"] == "DENY"
        if name == "redoc":  # a fresh style nonce per answer, so never cached
            assert r.headers["cache-control"] == "no-store"
            assert "style-src 'self' 'nonce-" in csp
            continue
        assert r.headers["cache-control"] == (
            "public, max-age=60, stale-while-revalidate=30, stale-if-error=300"
        )
        again = client.get(path, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304, name
        assert parse(r.text).inline == [], name


def test_etags_change_with_the_data_and_the_query(
    client: TestClient, session: Session, demo_data: None
) -> None:
    first = client.get("/departments/311?as_of=2026-05-16").headers["etag"]
    assert client.get("/departments/311?as_of=2026-05-15").headers["etag"] != first
    from api.changes import service as changes

    changes.bump(session, ["scores"])
    session.flush()
    assert client.get("/departments/311?as_of=2026-05-16").headers["etag"] != first


def test_scoreboard_and_scorecards_show_the_apis_numbers(
    client: TestClient, demo_data: None
) -> None:
    api = client.get(f"/v1/cityscore?as_of={AS_OF}").json()
    page = parse(client.get(f"/?as_of={AS_OF}").text)
    table = body_rows(page, "metrics-caption")
    assert [r[0] for r in table] == [m["name"] for m in api["metrics"]]
    for row, m in zip(table, api["metrics"], strict=True):
        assert row[3:7] == [shown(m[w]["score"]) for w in ("day", "week", "month", "quarter")]

    history = client.get(f"/v1/cityscore/history?start=2026-02-15&end={AS_OF}").json()["data"]
    assert body_rows(page, "history-caption") == [
        [h["as_of"], *(shown(h[w]) for w in ("day", "week", "month", "quarter"))] for h in history
    ]

    card = client.get(f"/v1/scorecards/311?as_of={AS_OF}").json()
    page = parse(client.get(f"/departments/311?as_of={AS_OF}").text)
    table = body_rows(page, "card-caption")
    for row, m in zip(table, card["metrics"], strict=True):
        assert row[0] == m["name"]
        assert row[3:7] == [shown(m[w]) for w in ("day", "week", "month", "quarter")]
    trend = body_rows(page, "trend-caption")
    assert [r[1:] for r in trend] == [
        [shown(t["score"]) for t in m["trend"]] for m in card["metrics"]
    ]

    listing = client.get(f"/v1/scorecards?as_of={AS_OF}").json()["data"]
    page = parse(client.get(f"/departments?as_of={AS_OF}").text)
    assert [r[3:8] for r in body_rows(page, "depts-caption")] == [
        [*(shown(d[w]) for w in ("day", "week", "month", "quarter")), str(d["below_target"])]
        for d in listing
    ]


def test_metric_page_tables_are_the_apis_rows(client: TestClient, demo_data: None) -> None:
    html = client.get(f"/metrics/{METRIC}?as_of={AS_OF}&interval=month").text
    page = parse(html)
    values = client.get(
        f"/v1/metrics/{METRIC}/values?start=2024-05-01&end=2026-04-30&interval=month"
    ).json()["data"]
    assert f"/v1/metrics/{METRIC}/values.csv?start=2024-05-01&amp;end=2026-04-30" in html
    assert [r[0] for r in body_rows(page, "values-caption")] == [v["start"] for v in values]
    scores = client.get(f"/v1/metrics/{METRIC}/scores?start=2026-02-15&end={AS_OF}").json()
    assert body_rows(page, "scores-caption") == [
        [s["as_of"], *(shown(s[w]) for w in ("day", "week", "month", "quarter"))]
        for s in scores["data"]
    ]
    assert '<title id="values-chart-title">' in html and 'class="target-label"' in html


def test_weekly_report_takes_any_day_of_the_week(client: TestClient, demo_data: None) -> None:
    html = client.get("/reports/weekly?week=2026-05-06").text  # a Wednesday
    assert "The week of <strong>2026-05-04</strong> to <strong>2026-05-10</strong>" in html
    api = client.get("/v1/cityscore?as_of=2026-05-11").json()
    assert f'<span class="card-score">{shown(api["score"]["week"])}</span>' in html
    assert client.get("/reports/weekly?week=2026-13-01").status_code == 400


def test_unknown_pages_are_html_and_the_api_keeps_problem_json(
    client: TestClient, demo_data: None
) -> None:
    for path, status in [
        ("/no-such-page", 404),
        ("/departments/nope", 404),
        ("/metrics/nope", 404),
        ("/analyses/nope", 404),
        ("/?as_of=2026-02-30", 400),
        (f"/metrics/{METRIC}?interval=year", 400),
    ]:
        r = client.get(path)
        assert r.status_code == status, path
        assert r.headers["content-type"] == "text/html; charset=utf-8", path
        assert '<html lang="en">' in r.text and "Skip to main content" in r.text
        assert r.headers["x-frame-options"] == "DENY"
    for path in ("/v1/nope", "/v1/departments/nope", "/healthz/x"):
        r = client.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_api_responses_carry_the_security_headers(client: TestClient, demo_data: None) -> None:
    for path in ("/v1/metrics", "/v1/metrics.csv", "/healthz", "/static/site.css"):
        r = client.get(path)
        assert r.status_code == 200
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in r.headers["content-security-policy"]


def test_docs_load_every_asset_from_the_server(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        assert "https://" not in html and "http://" not in html
        refs = [
            part.split('"')[0]
            for part in html.split('src="')[1:] + html.split('href="')[1:]
            if part.startswith("/")
        ]
        assert any("vendor" in ref for ref in refs)
        for ref in refs:
            assert client.get(ref).status_code == 200, ref
    bundle = client.get("/static/vendor/redoc.standalone.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert b"cdn.redoc.ly" not in bundle.content
    assert b"self.REDOC_STYLE_NONCE" in bundle.content
    assert client.get("/static/vendor/other.js").status_code == 404


def test_page_numbers_are_those_of_the_services(client: TestClient, demo_data: None) -> None:
    """The about page and the widget link to the data; the widget shows the API's week score."""
    api = client.get(f"/v1/cityscore?as_of={AS_OF}").json()
    html = client.get(f"/embed/cityscore?as_of={AS_OF}").text
    assert f'<span class="card-score">{shown(api["score"]["week"])}</span>' in html
    about = client.get("/about").text
    for link in ("/docs", "/v1/cityscore.csv", "/metrics", "/v1/values.csv"):
        assert f'href="{link}"' in about


def test_metric_pages_describe_their_dataset_in_json_ld(
    client: TestClient, session: Session
) -> None:
    """Issue 13: dataset pages carry schema.org Dataset JSON-LD, with working downloads."""
    import json
    import re

    admin = admin_headers(session)
    put_department(client, admin, "311")
    put_metric(client, admin, "calls-on-time", "311")
    page = client.get("/metrics/calls-on-time")
    assert page.status_code == 200
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page.text, re.S)
    assert len(blocks) == 1
    data = json.loads(blocks[0])
    assert data["@type"] == "Dataset" and data["identifier"] == "calls-on-time"
    formats = {d["encodingFormat"]: d["contentUrl"] for d in data["distribution"]}
    assert set(formats) == {"text/csv", "application/json"}
    for url in formats.values():
        assert client.get(url.replace("http://testserver", "")).status_code == 200
