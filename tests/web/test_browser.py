"""The site in a real browser: numbers equal the API's, links resolve, axe-core finds nothing,
nothing loads from off the machine, the docs run under the CSP, the report prints.

Tests that compare pages with the API run against a server on each store; the others use
the SQLite server (same code, and starting one server per store for every check would
double the suite's time for no new information).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.web.conftest import ARTIFACTS, Site, Watched, open_page

pytestmark = pytest.mark.browser

DEPARTMENT = "311"
METRIC = "311-call-center-performance"
ANALYSIS = "ems-ambulance-allocation"
PAGES = {
    "scoreboard": "/",
    "departments": "/departments",
    "department": f"/departments/{DEPARTMENT}",
    "metrics": "/metrics",
    "metric": f"/metrics/{METRIC}",
    "report": "/reports/weekly",
    "analyses": "/analyses",
    "analysis": f"/analyses/{ANALYSIS}",
    "about": "/about",
    "embed": "/embed/cityscore",
    "not-found": "/no-such-page",
}
STATUS_WORDS = {
    "above_target": "Above target",
    "below_target": "Below target",
    "not_scored": "Not scored",
    "no_data": "No data",
}
# textContent, not innerText: tables inside a closed <details> count too
ROWS_JS = (
    "rows => rows.map(r => [...r.children].map(c => c.textContent.replace(/\\s+/g, ' ').trim()))"
)


def shown(value: float | None) -> str:
    """A score as the pages print it: three decimals, more when rounding would reach 1."""
    if value is None:
        return "—"
    digits = 3
    while value < 1 and f"{value:.{digits}f}".startswith("1.") and digits < 9:
        digits += 1
    return f"{value:.{digits}f}"


def rows(w: Watched, selector: str) -> list[list[str]]:
    found: list[list[str]] = w.page.eval_on_selector_all(selector, ROWS_JS)
    return found


def goto(w: Watched, site: Site, path: str, status: int = 200) -> None:
    response = w.page.goto(site.url(path))
    assert response is not None and response.status == status, path


def json_links(w: Watched) -> list[str]:
    """The paths (with queries) of the page's 'JSON' download links, in page order."""
    links: list[str] = w.page.eval_on_selector_all(
        ".downloads a", "as => as.filter(a => a.innerText === 'JSON').map(a => a.href)"
    )
    assert links, "no download link"
    return [
        urlsplit(u).path + ("?" + urlsplit(u).query if urlsplit(u).query else "") for u in links
    ]


def json_link(w: Watched) -> str:
    """The path of the first 'JSON' download link on the page."""
    return json_links(w)[0]


# --- pages and their API twins (both stores) ----------------------------------------------


def test_scoreboard_shows_the_apis_numbers(site: Site, tab: Watched) -> None:
    goto(tab, site, "/")
    history_link, table_link = json_links(tab)
    api = site.api(table_link)
    assert table_link.startswith("/v1/cityscore?as_of=")
    cards = tab.page.eval_on_selector_all(".headline .card-score", "cs => cs.map(c => c.innerText)")
    assert cards == [shown(api["score"][w]) for w in ("day", "week", "month", "quarter")]
    history = site.api(history_link)["data"]
    assert history_link.startswith("/v1/cityscore/history?start=") and len(history) == 91
    assert rows(tab, "table:has(#history-caption) tbody tr") == [
        [h["as_of"], *(shown(h[w]) for w in ("day", "week", "month", "quarter"))] for h in history
    ]
    table = rows(tab, "table:has(#metrics-caption) tbody tr")
    assert len(table) == len(api["metrics"]) > 0
    for row, metric in zip(table, api["metrics"], strict=True):
        assert row[0] == metric["name"]
        assert row[3:7] == [shown(metric[w]["score"]) for w in ("day", "week", "month", "quarter")]
    # the status shown is the one the department's scorecard publishes
    card = site.api(f"/v1/scorecards/{DEPARTMENT}?as_of={api['as_of']}")
    statuses = {m["metric"]: m["status"] for m in card["metrics"]}
    for row, metric in zip(table, api["metrics"], strict=True):
        if metric["metric"] in statuses:
            assert row[7].endswith(STATUS_WORDS[statuses[metric["metric"]]])


def test_department_pages_show_the_apis_numbers(site: Site, tab: Watched) -> None:
    goto(tab, site, "/departments")
    listing = site.api(json_link(tab))["data"]
    table = rows(tab, "main table tbody tr")
    assert [r[0] for r in table] == [d["name"] for d in listing]
    for row, d in zip(table, listing, strict=True):
        assert row[3:7] == [shown(d[w]) for w in ("day", "week", "month", "quarter")]
        assert row[7] == str(d["below_target"])

    goto(tab, site, f"/departments/{DEPARTMENT}")
    assert json_link(tab).startswith(f"/v1/scorecards/{DEPARTMENT}?as_of=")
    card = site.api(json_link(tab))
    cards = tab.page.eval_on_selector_all(".headline .card-score", "cs => cs.map(c => c.innerText)")
    assert cards == [shown(card["score"][w]) for w in ("day", "week", "month", "quarter")]
    table = rows(tab, "table:not(.compact) tbody tr")
    assert [r[0] for r in table] == [m["name"] for m in card["metrics"]]
    for row, m in zip(table, card["metrics"], strict=True):
        assert row[3:7] == [shown(m[w]) for w in ("day", "week", "month", "quarter")]
        assert row[7].endswith(STATUS_WORDS[m["status"]])
    trend = rows(tab, "table.compact tbody tr")
    for row, m in zip(trend, card["metrics"], strict=True):
        assert row[1:] == [shown(t["score"]) for t in m["trend"]]
    assert tab.page.locator("table:not(.compact) svg[role=img] title").count() == len(
        card["metrics"]
    )


def test_metric_pages_show_the_apis_numbers(site: Site, tab: Watched) -> None:
    goto(tab, site, "/metrics?q=call")
    found = site.api(json_link(tab))["data"]
    assert json_link(tab) == "/v1/metrics?q=call"
    assert [r[0] for r in rows(tab, "main table tbody tr")] == [m["name"] for m in found]

    for interval in ("day", "week", "month"):
        goto(tab, site, f"/metrics/{METRIC}?interval={interval}")
        links = tab.page.eval_on_selector_all(
            ".downloads a", "as => as.filter(a => a.innerText === 'JSON').map(a => a.href)"
        )
        values_url = next(u for u in links if "/values?" in u)
        scores_url = next(u for u in links if "/scores?" in u)
        assert f"interval={interval}" in values_url
        values = site.api(urlsplit(values_url).path + "?" + urlsplit(values_url).query)["data"]
        shown_values = rows(tab, "#values-caption ~ tbody tr, table:has(#values-caption) tbody tr")
        assert [r[0] for r in shown_values] == [v["start"] for v in values]
        assert len(values) > 0
        scores = site.api(urlsplit(scores_url).path + "?" + urlsplit(scores_url).query)["data"]
        shown_scores = rows(tab, "table:has(#scores-caption) tbody tr")
        assert shown_scores == [
            [s["as_of"], *(shown(s[w]) for w in ("day", "week", "month", "quarter"))]
            for s in scores
        ]
    chart = tab.page.locator("#values-chart-title")
    assert chart.count() == 1
    assert (tab.page.locator("svg.chart .target-label").first.text_content() or "").startswith(
        "target"
    )


def test_weekly_report_shows_the_apis_numbers(site: Site, tab: Watched) -> None:
    goto(tab, site, "/reports/weekly")
    api = site.api(json_link(tab))
    monday = dt.date.fromisoformat(api["as_of"]) - dt.timedelta(days=7)
    assert tab.page.locator("h1 + .lede").inner_text().startswith(f"The week of {monday}")
    cards = tab.page.eval_on_selector_all(".headline .card-score", "cs => cs.map(c => c.innerText)")
    assert cards == [shown(api["score"][w]) for w in ("day", "week", "month", "quarter")]


# --- links, requests, keyboard (SQLite server) ---------------------------------------------


def test_every_link_on_every_page_type_resolves(sqlite_site: Site, tab: Watched) -> None:
    checked: dict[str, int] = {}
    for name, path in PAGES.items():
        goto(tab, sqlite_site, path, 404 if name == "not-found" else 200)
        hrefs: list[str] = tab.page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
        for href in hrefs:
            parts = urlsplit(href)
            if parts.hostname not in ("127.0.0.1",):
                continue  # a department's own website: never fetched from the tests
            target = parts._replace(fragment="").geturl()
            if parts.fragment and target == tab.page.url:
                continue  # the skip link and other anchors on the page itself
            if target not in checked:
                checked[target] = httpx.get(target, timeout=30).status_code
    broken = {url: code for url, code in checked.items() if code >= 400}
    assert broken == {}
    assert len(checked) > 50  # pages, downloads (CSV and JSON), docs, the feed


def test_skip_link_is_the_first_stop_and_moves_focus(sqlite_site: Site, tab: Watched) -> None:
    goto(tab, sqlite_site, "/")
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate("document.activeElement.innerText") == "Skip to main content"
    tab.page.keyboard.press("Enter")
    assert tab.page.evaluate("document.activeElement.id") == "main"


def test_only_the_widget_can_be_framed(sqlite_site: Site, tab: Watched) -> None:
    parent = sqlite_site.url("/__framing-test")  # a page of the same origin, made up here
    tab.page.route(
        parent,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<iframe title="w" src="{sqlite_site.url("/embed/cityscore")}"></iframe>'
            f'<iframe title="s" src="{sqlite_site.url("/")}"></iframe>',
        ),
    )
    tab.page.goto(parent)
    tab.page.wait_for_timeout(1500)
    by_url = {f.url: f for f in tab.page.frames}
    widget = by_url[sqlite_site.url("/embed/cityscore")]
    assert "CityScore" in widget.inner_text("body")
    assert sqlite_site.url("/") not in by_url or by_url[sqlite_site.url("/")].inner_text(
        "body"
    ).strip() in ("", None)
    tab.errors.clear()  # the browser reports the refused frame on the console


def test_docs_and_redoc_run_under_the_csp_with_local_assets(
    sqlite_site: Site, tab: Watched
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    goto(tab, sqlite_site, "/docs")
    tab.page.wait_for_selector(".opblock-tag", timeout=20000)
    assert tab.page.locator(".opblock").count() > 10
    tab.page.screenshot(path=str(ARTIFACTS / "docs-desktop.png"))
    goto(tab, sqlite_site, "/redoc")
    tab.page.wait_for_selector("#redoc h1", timeout=20000)
    assert "CityScore API" in tab.page.inner_text("#redoc h1")
    tab.page.wait_for_timeout(500)
    tab.page.screenshot(path=str(ARTIFACTS / "redoc-desktop.png"))
    assert tab.errors == [], tab.errors  # CSP violations are console errors


# --- accessibility, screenshots, print (SQLite server) ------------------------------------


def axe_source() -> str:
    return resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("name", list(PAGES))
def test_axe_finds_no_violations_and_screenshots(
    sqlite_site: Site, browser: Any, name: str, width: int
) -> None:
    w = open_page(browser, width=width, height=800)
    try:
        goto(w, sqlite_site, PAGES[name], 404 if name == "not-found" else 200)
        w.page.evaluate(axe_source())  # not a script tag: the page's CSP forbids inline code
        result = w.page.evaluate(
            "axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
        )
        violations = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5])
            for v in result["violations"]
        ]
        assert violations == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        kind = "desktop" if width > 375 else "375px"
        w.page.screenshot(path=str(ARTIFACTS / f"{name}-{kind}.png"), full_page=True)
        if width == 375:  # nothing wider than the screen: tables scroll inside their region
            assert w.page.evaluate("document.documentElement.scrollWidth") <= 375
        assert w.external == []
        assert [e for e in w.errors if "404" not in e] == []
    finally:
        w.page.context.close()


def test_axe_does_report_violations(tab: Watched) -> None:
    """The check above can fail: on a page with known faults axe-core names them."""
    tab.page.set_content('<html><body><img src="data:,"><a href="/x"></a></body></html>')
    tab.page.evaluate(axe_source())
    result = tab.page.evaluate("axe.run(document)")
    found = {v["id"] for v in result["violations"]}
    assert {"image-alt", "html-has-lang", "link-name"} <= found


def test_weekly_report_prints_to_pdf(sqlite_site: Site, tab: Watched) -> None:
    from pypdf import PdfReader

    goto(tab, sqlite_site, "/reports/weekly")
    week = tab.page.get_attribute("input#week", "value")
    pdf = tab.page.pdf(format="Letter", print_background=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "weekly-report.pdf").write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    assert 1 <= len(reader.pages) <= 8, len(reader.pages)
    text = " ".join(page.extract_text() for page in reader.pages)
    text = re.sub(r"\s+", " ", text)
    assert "Weekly CityScore report" in text
    assert f"The week of {week}" in text
    assert "Below target this week" in text and "What moved most" in text
    # the screen's navigation, forms and download links stay off paper
    assert "Skip to main content" not in text and "Download" not in text
