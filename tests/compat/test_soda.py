"""SODA 2.1 through the real ``sodapy`` client against a running server, on both stores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from sodapy import Socrata

from api.compat.seek import seek_cache
from tests.compat.conftest import Live


@pytest.fixture(scope="module")
def soda(live: Live) -> Iterator[Socrata]:
    # The documented way to talk plain HTTP: a session adapter for the "http://" prefix.
    adapter = {"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()}
    client = Socrata(live.url.removeprefix("http://"), "any-app-token", session_adapter=adapter)
    yield client
    client.close()


def v1(live: Live, path: str, **params: Any) -> Any:
    r = httpx.get(live.url + path, params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def all_v1_values(live: Live, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    url: str | None = (
        live.url + "/v1/values?" + httpx.QueryParams({"limit": 10000, **params}).__str__()
    )
    while url:
        body = httpx.get(url, timeout=30).json()
        rows += body["data"]
        url = body["next"]
    return rows


def stamp(day: str) -> str:
    return f"{day}T00:00:00.000"


def num(x: float | None) -> str | None:
    if x is None:
        return None
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def test_get_default_page_matches_v1_values(live: Live, soda: Socrata) -> None:
    rows = soda.get("values")
    assert len(rows) == 1000  # the default $limit
    expected = all_v1_values(live)[:1000]
    assert [(r["metric"], r["date"]) for r in rows] == [
        (e["metric"], stamp(e["date"])) for e in expected
    ]
    first, want = rows[0], expected[0]
    assert first["department"] == want["department"]
    assert first["value"] == num(want["value"])  # numbers are strings
    assert all(isinstance(v, str) for r in rows for v in r.values())
    # nulls are omitted: non-ratio metrics have no numerator key at all
    plain = (
        next(r for r in rows if r["metric"] == "bfd-incidents")
        if any(r["metric"] == "bfd-incidents" for r in rows)
        else None
    )
    if plain is not None:
        assert "numerator" not in plain


def test_get_with_every_clause(live: Live, soda: Socrata) -> None:
    everything = all_v1_values(live)
    metrics = sorted({r["metric"] for r in everything})
    days = sorted({r["date"] for r in everything})
    first, last = days[10], days[40]
    rows = soda.get(
        "values",
        select="metric, date, value AS v, numerator",
        where=f"date between '{first}' and '{last}' AND (metric = '{metrics[0]}' OR "
        f"metric in('{metrics[1]}', '{metrics[2]}')) AND NOT value < 0 AND value IS NOT NULL",
        order="v DESC, date",
        limit=7,
        offset=3,
    )
    want = [
        r
        for r in everything
        if first <= r["date"] <= last and r["metric"] in metrics[:3] and r["value"] is not None
    ]
    want.sort(key=lambda r: (r["metric"], r["date"]))  # key order breaks ties last
    want.sort(key=lambda r: r["date"])
    want.sort(key=lambda r: -r["value"])
    assert [(r["metric"], r["date"], r["v"]) for r in rows] == [
        (w["metric"], stamp(w["date"]), num(w["value"])) for w in want[3:10]
    ]
    assert all(set(r) <= {"metric", "date", "v", "numerator"} for r in rows)

    like = soda.get("values", where="metric like '311%'", select="metric", limit=50000)
    assert {r["metric"] for r in like} == {m for m in metrics if m.startswith("311")}
    nulls = soda.get("values", where="numerator IS NULL", select="metric", limit=50000)
    assert len(nulls) == sum(1 for r in everything if r["numerator"] is None)

    q = soda.get("metrics", q="call center", select="slug")
    assert [r["slug"] for r in q] == ["311-call-center-performance"]
    filtered = soda.get("values", metric=metrics[0], date=first)
    assert [(r["metric"], r["date"]) for r in filtered] == [(metrics[0], stamp(first))]


def test_group_and_aggregates(live: Live, soda: Socrata) -> None:
    everything = all_v1_values(live)
    rows = soda.get(
        "values", select="department, count(*) AS n, max(date)", group="department", limit=100
    )
    counts: dict[str, int] = {}
    for r in everything:
        counts[r["department"]] = counts.get(r["department"], 0) + 1
    assert {r["department"]: int(r["n"]) for r in rows} == counts
    assert [r["department"] for r in rows] == sorted(counts)
    assert all(r["max_date"].endswith("T00:00:00.000") for r in rows)


def test_get_all_pages_every_row_once_with_seeks(live: Live, soda: Socrata) -> None:
    cache = seek_cache(live.app.state)
    hits = cache.hits
    rows = list(soda.get_all("values", select="metric, date"))
    keys = [(r["metric"], r["date"]) for r in rows]
    assert len(keys) == len(set(keys)) == len(all_v1_values(live))
    assert cache.hits - hits >= len(keys) // 1000 - 1  # every page after the first seeks
    # a page reached without a remembered key (a cold offset) is the same page
    page = soda.get("values", select="metric, date", offset=2500, limit=10)
    assert [(r["metric"], r["date"]) for r in page] == keys[2500:2510]


def test_csv_and_headers(live: Live, soda: Socrata) -> None:
    table = soda.get("cityscore", content_type="csv", order="as_of DESC", limit=3)
    assert table[0] == ["as_of", "day", "week", "month", "quarter"]
    assert len(table) == 4
    today = live.settings.today().isoformat()
    history = v1(live, "/v1/cityscore/history", start=table[3][0][:10], end=today)["data"]
    by_day = {h["as_of"]: h for h in history}
    for row in table[1:]:
        h = by_day[row[0][:10]]
        assert row[1:] == [num(h[w]) or "" for w in ("day", "week", "month", "quarter")]

    r = httpx.get(
        live.url + "/resource/values.csv",
        params={"$select": "metric, value", "$limit": 2},
        headers={"X-App-Token": "ignored"},
    )
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["x-soda2-fields"] == '["metric","value"]'
    assert r.headers["x-soda2-types"] == '["text","number"]'
    j = httpx.get(live.url + "/resource/metrics.json", params={"$limit": 1})
    assert j.headers["content-type"] == "application/json"
    assert j.headers["x-soda2-types"].startswith('["text"')


def test_metrics_and_scores_datasets(live: Live, soda: Socrata) -> None:
    metrics = soda.get("metrics", where="in_cityscore = true AND target IS NOT NULL", limit=100)
    catalogue = {m["slug"]: m for m in v1(live, "/v1/metrics", limit=100)["data"]}
    assert metrics and all(catalogue[m["slug"]]["target"] is not None for m in metrics)
    assert all(m["in_cityscore"] is True for m in metrics)  # checkbox stays a boolean
    slug = "311-call-center-performance"
    assert next(m for m in metrics if m["slug"] == slug)["target"] == num(catalogue[slug]["target"])

    today = live.settings.today()
    start = (today - dt.timedelta(days=20)).isoformat()
    scores = soda.get("scores", metric=slug, where=f"as_of >= '{start}'", limit=100)
    v1_scores = v1(live, f"/v1/metrics/{slug}/scores", start=start, end=today.isoformat())
    want = {s["as_of"]: s for s in v1_scores["data"]}
    assert scores
    for s in scores:
        assert s.get("week_score") == num(want[s["as_of"][:10]]["week"])


def test_view_metadata(live: Live, soda: Socrata) -> None:
    meta = soda.get_metadata("values")
    assert meta["id"] == "values"
    assert [c["fieldName"] for c in meta["columns"]] == [
        "metric",
        "department",
        "date",
        "value",
        "numerator",
        "denominator",
        "updated_at",
    ]
    assert {c["dataTypeName"] for c in meta["columns"]} == {"text", "floating_timestamp", "number"}
    assert isinstance(meta["rowsUpdatedAt"], int)
    assert abs(meta["rowsUpdatedAt"] - dt.datetime.now(dt.UTC).timestamp()) < 3600


BAD = [
    ({"$where": "value >"}, "Could not parse $where"),
    ({"$where": "nope = 1"}, "No such column: nope"),
    ({"$where": "metric > 3"}, "Type mismatch"),
    ({"$where": "value"}, "must be a condition"),
    ({"$where": "date > 'yesterday'"}, "not a floating timestamp"),
    ({"$where": "count(*) > 1"}, "Aggregates are not allowed"),
    ({"$where": "metric like value"}, "string literal pattern"),
    ({"$select": "metric, value"}, None),
    ({"$select": "metric; DROP TABLE metrics"}, "Could not parse $select"),
    ({"$select": "value as v, metric as v"}, "Duplicate output column v"),
    ({"$select": "metric, value", "$group": "metric"}, "value must be an aggregate"),
    ({"$select": "frobnicate(value)"}, "Unknown function"),
    ({"$order": "value sideways"}, "Could not parse $order"),
    ({"$limit": "50001"}, "at most 50000"),
    ({"$limit": "-1"}, "must not be negative"),
    ({"$offset": "ten"}, "whole number"),
    ({"$frob": "1"}, "Unknown parameter $frob"),
    ({"$query": "select *"}, "$query is not supported"),
    ({"colour": "red"}, "No such column: colour"),
    ({"date": "2026-02-30"}, "not a floating timestamp"),
    ({"value": "lots"}, "is not a number"),
]


@pytest.mark.parametrize(("params", "message"), BAD)
def test_bad_soql_is_a_soda_400(live: Live, params: dict[str, str], message: str | None) -> None:
    r = httpx.get(live.url + "/resource/values.json", params=params)
    if message is None:
        assert r.status_code == 200
        return
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "query.soql.invalid" and body["error"] is True
    assert message in body["message"], body
    assert isinstance(body["data"], dict)


def test_sodapy_raises_on_errors(live: Live, soda: Socrata) -> None:
    with pytest.raises(requests.HTTPError, match="No such column: nope"):
        soda.get("values", where="nope = 1")
    with pytest.raises(requests.HTTPError, match="404"):
        soda.get("nope")
    r = httpx.get(live.url + "/resource/nope.json")
    assert r.json()["code"] == "dataset.missing"


GARBAGE = [
    "'",
    "''''",
    "(((",
    ")",
    "a b c",
    "1 = = 1",
    "`",
    "``",
    "value between 1",
    "in ()",
    "metric in ('a',",
    "NOT",
    "and or",
    "value is nul",
    "value ~ 1",
    "\u00e9t\u00e9 = 1",
    "date > '2026-01-01' or",
    "9" * 400,
    "(" * 300 + "1" + ")" * 300,
    "value / 0 > 1",
    "upper(value) = 'x'",
    "sum(metric) > 1",
    "count(*, *)",
    "-metric = 1",
    "value = true",
    "in_cityscore > 1",
    "x" * 5000,
    "\\",
    "$where",
    ";",
    "--",
    "/* */",
    "metric = 'it''s'",
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_never_500(live: Live, garbage: str) -> None:
    for dataset in ("values", "metrics"):
        for clause in ("$where", "$select", "$order", "$group"):
            r = httpx.get(live.url + f"/resource/{dataset}.json", params={clause: garbage})
            assert r.status_code in (200, 400), (dataset, clause, garbage, r.text)
            if r.status_code == 400:
                assert r.json()["code"] == "query.soql.invalid"


# Nesting a recursive compiler would follow frame by frame: within 4,000 characters these
# reach 600-800 levels, past Python's recursion limit (they gave 500s).
DEEP = [
    "NOT " * 600 + "value > 1",
    "value" + " + 1" * 800 + " > 1",
]


@pytest.mark.parametrize("clause", ["$where", "$select", "$order"])
@pytest.mark.parametrize("deep", DEEP, ids=["not", "plus"])
def test_deep_nesting_is_a_soda_400(live: Live, clause: str, deep: str) -> None:
    for suffix in (".json", ".csv"):
        r = httpx.get(live.url + "/resource/values" + suffix, params={clause: deep})
        assert r.status_code == 400, (clause, suffix, r.text[:300])
        body = r.json()
        assert body["code"] == "query.soql.invalid" and "nested" in body["message"]


@pytest.mark.parametrize(
    "where",
    ["NOT " * 50 + "value > 1", "(" * 900 + "value > 1" + ")" * 900],  # NOTs: an even count
    ids=["nots", "parentheses"],  # parentheses group; they add no level
)
def test_nesting_up_to_the_limit_is_answered(live: Live, where: str) -> None:
    url = live.url + "/resource/values.json"
    r = httpx.get(url, params={"$where": where, "$limit": 5})
    assert r.status_code == 200, r.text
    assert r.json() == httpx.get(url, params={"$where": "value > 1", "$limit": 5}).json()


def test_conditional_get(live: Live) -> None:
    url = live.url + "/resource/metrics.json"
    first = httpx.get(url, params={"$select": "slug"})
    etag = first.headers["etag"]
    again = httpx.get(url, params={"$select": "slug"}, headers={"If-None-Match": etag})
    assert again.status_code == 304
    other = httpx.get(url, params={"$select": "name"}, headers={"If-None-Match": etag})
    assert other.status_code == 200
    assert httpx.head(url).status_code == 200


def test_explicit_key_order_seeks_too(live: Live, soda: Socrata) -> None:
    cache = seek_cache(live.app.state)
    hits = cache.hits
    rows = list(soda.get_all("cityscore", order="as_of", select="as_of", limit=100))
    days = [r["as_of"] for r in rows]
    assert days == sorted(days) and len(days) == len(set(days)) > 200
    assert cache.hits - hits >= len(days) // 100 - 1
    newest_first = soda.get("cityscore", order="as_of DESC", select="as_of", limit=5, offset=100)
    assert [r["as_of"] for r in newest_first] == days[::-1][100:105]
