"""CKAN's Action API through the real ``ckanapi`` client against a running server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ckanapi
import httpx
import pytest

from api.compat.ckan.resources import DAILY_VALUES_ID, DEFINITIONS_ID, FULL_METRIC_LIST_ID
from tests.compat.conftest import Live

SUMMARY_ID = "cityscore-summary"
FML_COLUMNS = [
    "metric_name",
    "score_calculated_ts",
    "target",
    "metric_logic",
    "day_score",
    "day_numerator",
    "day_denominator",
    "week_score",
    "week_numerator",
    "week_denominator",
    "month_score",
    "month_numerator",
    "month_denominator",
    "quarter_score",
    "quarter_numerator",
    "quarter_denominator",
    "latest_score_flag",
]


@pytest.fixture(scope="module")
def ckan(live: Live) -> Iterator[ckanapi.RemoteCKAN]:
    with ckanapi.RemoteCKAN(live.url, user_agent="cityscore-tests") as client:
        yield client


def text(x: float | None) -> str | None:
    if x is None:
        return None
    out = repr(float(x))
    return out[:-2] if out.endswith(".0") else out


def test_package_show_and_list(live: Live, ckan: ckanapi.RemoteCKAN) -> None:
    assert ckan.action.package_list() == ["cityscore"]
    package = ckan.action.package_show(id="cityscore")
    ids = [r["id"] for r in package["resources"]]
    assert ids == [FULL_METRIC_LIST_ID, DEFINITIONS_ID, SUMMARY_ID, DAILY_VALUES_ID]
    assert all(r["datastore_active"] for r in package["resources"])
    assert ckan.action.package_show(id=package["id"])["name"] == "cityscore"
    resource = ckan.action.resource_show(id=FULL_METRIC_LIST_ID)
    assert resource["url"] == f"{live.url}/datastore/dump/{FULL_METRIC_LIST_ID}"
    # the GET-only client and the /api/3/ prefix answer the same
    with ckanapi.RemoteCKAN(live.url, get_only=True) as get_client:
        assert get_client.action.package_show(id="cityscore")["resources"][0]["id"] == ids[0]
    r = httpx.get(live.url + "/api/3/action/package_show", params={"id": "cityscore"})
    body = r.json()
    assert body["success"] is True and body["help"].endswith("help_show?name=package_show")


def test_full_metric_list_matches_cityscore(live: Live, ckan: ckanapi.RemoteCKAN) -> None:
    result = ckan.action.datastore_search(resource_id=FULL_METRIC_LIST_ID, limit=1000)
    assert result["fields"][0] == {"id": "_id", "type": "int"}
    assert [f["id"] for f in result["fields"][1:]] == FML_COLUMNS
    assert {f["type"] for f in result["fields"][1:]} == {"text"}
    doc = httpx.get(live.url + "/v1/cityscore").json()
    records = result["records"]
    assert result["total"] == len(records) == len(doc["metrics"])
    assert [r["_id"] for r in records] == list(range(1, len(records) + 1))
    by_name = {r["metric_name"]: r for r in records}
    for m in doc["metrics"]:
        row = by_name[m["name"]]
        assert row["target"] == text(m["target"])
        assert row["metric_logic"] == m["metric_logic"]
        for w in ("day", "week", "month", "quarter"):
            assert row[f"{w}_score"] == text(m[w]["score"])
            assert row[f"{w}_numerator"] == text(m[w]["numerator"])
        assert row["latest_score_flag"] == "1"
    assert all(isinstance(v, str | None) for r in records for k, v in r.items() if k != "_id")


def test_definitions_and_summary(live: Live, ckan: ckanapi.RemoteCKAN) -> None:
    defs = ckan.action.datastore_search(resource_id=DEFINITIONS_ID, q="call center")
    assert [f["id"] for f in defs["fields"]] == ["_id", "metric_name", "metric_title", "definition"]
    assert [r["metric_name"] for r in defs["records"]] == ["311 CALL CENTER PERFORMANCE"]
    summary = ckan.action.datastore_search(resource_id=SUMMARY_ID, limit=1)
    total = summary["records"][0]
    assert total["metric_name"] == "CITYSCORE TOTAL"
    score = httpx.get(live.url + "/v1/cityscore").json()["score"]
    assert total["previous_week_score"] == round(score["week"], 6)


def all_values(live: Live) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    url: str | None = live.url + "/v1/values?limit=10000"
    while url:
        body = httpx.get(url).json()
        rows += body["data"]
        url = body["next"]
    return rows


def test_daily_values_paging_through_links_next(live: Live, ckan: ckanapi.RemoteCKAN) -> None:
    """What community apps do: follow ``_links.next`` until a page comes back empty."""
    expected = [(r["metric"], r["date"]) for r in all_values(live)]
    seen: list[tuple[str, str]] = []
    ids: list[int] = []
    params: dict[str, Any] = {"resource_id": DAILY_VALUES_ID, "limit": 2000}
    pages = 0
    while True:
        result = ckan.action.datastore_search(**params)
        pages += 1
        if not result["records"]:
            break
        assert result["total"] == len(expected)
        seen += [(r["metric"], r["date"]) for r in result["records"]]
        ids += [r["_id"] for r in result["records"]]
        nxt = result["_links"]["next"]
        assert urlsplit(nxt).path == "/api/action/datastore_search"
        params = dict(parse_qsl(urlsplit(nxt).query))
        assert pages < 100
    assert seen == expected
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # the same next link, fetched as a plain GET, gives the same page
    first = httpx.get(
        live.url + "/api/3/action/datastore_search",
        params={"resource_id": DAILY_VALUES_ID, "limit": 5},
    ).json()["result"]
    second = httpx.get(live.url + first["_links"]["next"]).json()["result"]
    assert [r["_id"] for r in second["records"]] == ids[5:10]


def test_datastore_search_options(live: Live, ckan: ckanapi.RemoteCKAN) -> None:
    everything = all_values(live)
    metric = everything[0]["metric"]
    mine = [r for r in everything if r["metric"] == metric]
    result = ckan.action.datastore_search(
        resource_id=DAILY_VALUES_ID,
        filters={"metric": metric},
        fields="_id,date,value",
        sort="value desc, date",
        limit=5,
        offset=1,
    )
    assert [f["id"] for f in result["fields"]] == ["_id", "date", "value"]
    want = sorted(mine, key=lambda r: (-(r["value"] or 0), r["date"]))[1:6]
    assert [(r["date"], r["value"]) for r in result["records"]] == [
        (w["date"], w["value"]) for w in want
    ]
    assert result["total"] == len(mine) and result["offset"] == 1 and result["limit"] == 5

    lists = ckan.action.datastore_search(
        resource_id=DAILY_VALUES_ID,
        filters={"metric": metric},
        records_format="lists",
        limit=2,
        fields=["metric", "date"],
        include_total=False,
    )
    assert lists["records"] == [[metric, r["date"]] for r in mine[:2]]
    assert "total" not in lists
    csv = ckan.action.datastore_search(
        resource_id=DAILY_VALUES_ID,
        filters={"metric": metric},
        records_format="csv",
        limit=2,
        fields="metric,date",
    )
    assert csv["records"] == "".join(f"{metric},{r['date']}\n" for r in mine[:2])
    by_id = ckan.action.datastore_search(
        resource_id=DAILY_VALUES_ID, filters={"_id": result["records"][0]["_id"]}
    )
    assert [r["date"] for r in by_id["records"]] == [result["records"][0]["date"]]
    q = ckan.action.datastore_search(resource_id=DAILY_VALUES_ID, q={"metric": metric[:6]}, limit=1)
    assert q["total"] == sum(1 for r in everything if metric[:6] in r["metric"])
    assert ckan.action.datastore_search(resource_id=DAILY_VALUES_ID)["limit"] == 100


def test_errors_are_ckan_errors(live: Live, ckan: ckanapi.RemoteCKAN) -> None:
    with pytest.raises(ckanapi.NotFound):
        ckan.action.datastore_search(resource_id="no-such-resource")
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id="potholes")
    with pytest.raises(ckanapi.ValidationError) as error:
        ckan.action.datastore_search(resource_id=DAILY_VALUES_ID, limit=32001)
    assert error.value.error_dict["limit"] == ["Must be at most 32000"]
    with pytest.raises(ckanapi.NotAuthorized):
        ckan.action.datastore_search_sql(sql='SELECT * FROM "daily-values"')
    r = httpx.get(live.url + "/api/3/action/datastore_search_sql", params={"sql": "SELECT 1"})
    assert r.status_code == 403
    assert r.json()["error"]["__type"] == "Authorization Error"


BAD = [
    ({"limit": "many"}, 409, "limit"),
    ({"limit": "-1"}, 409, "limit"),
    ({"offset": "-5"}, 409, "offset"),
    ({"filters": "{not json"}, 409, "filters"),
    ({"filters": "[1, 2]"}, 409, "filters"),
    ({"filters": '{"colour": "red"}'}, 409, "colour"),
    ({"filters": '{"date": "soon"}'}, 409, "soon"),
    ({"filters": '{"value": "lots"}'}, 409, "lots"),
    ({"filters": '{"_id": "x"}'}, 409, "_id"),
    ({"sort": "value sideways"}, 409, "sort"),
    ({"sort": "colour"}, 409, "colour"),
    ({"fields": "metric,colour"}, 409, "colour"),
    ({"records_format": "xml"}, 409, "records_format"),
    ({"include_total": "maybe"}, 409, "include_total"),
    ({"q": '{"colour": "x"}'}, 409, "colour"),
    ({"frobnicate": "1"}, 409, "frobnicate"),
    ({"distinct": "true"}, 409, "distinct"),
    ({"resource_id": ""}, 409, "resource_id"),
]


@pytest.mark.parametrize(("params", "status", "names"), BAD)
def test_bad_parameters_name_the_problem(
    live: Live, params: dict[str, str], status: int, names: str
) -> None:
    query = {"resource_id": DAILY_VALUES_ID, **params}
    r = httpx.get(live.url + "/api/3/action/datastore_search", params=query)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False
    assert body["error"]["__type"] == "Validation Error"
    assert names in body["error"]["message"]


def test_post_garbage_never_500(live: Live) -> None:
    url = live.url + "/api/action/datastore_search"
    for content in (
        b"{",
        b"[]",
        b"null",
        b'"x"',
        b'{"resource_id": 7}',
        b'{"limit": {}}',
        b'{"resource_id": "daily-values", "filters": {"metric": {"a": 1}}}',
        b'{"resource_id": "daily-values", "fields": [1]}',
        b'{"resource_id": "daily-values", "sort": [3]}',
        b'{"resource_id": "daily-values", "q": 5}',
    ):
        r = httpx.post(url, content=content, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, (content, r.text)
        assert r.json()["success"] is False
    r = httpx.get(live.url + "/api/3/action/frobnicate")
    assert r.status_code == 400 and "Action name not known" in r.json()["error"]["message"]


def test_datastore_dump(live: Live) -> None:
    r = httpx.get(live.url + f"/datastore/dump/{FULL_METRIC_LIST_ID}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0].split(",") == ["_id", *FML_COLUMNS]
    assert len(lines) == 1 + len(httpx.get(live.url + "/v1/cityscore").json()["metrics"])
    dump = httpx.get(live.url + f"/datastore/dump/{DAILY_VALUES_ID}").text.splitlines()
    assert len(dump) == 1 + len(all_values(live))
    assert httpx.get(live.url + "/datastore/dump/nope").status_code == 404
