"""Department scorecards: the list (one row per department) and one department's card.
Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import admin_headers, days, insert_values, parse_csv, put_department, put_metric

AS_OF = "2026-05-16"  # a Saturday: day 05-15, week 05-04..05-10, month April, quarter Feb-Apr
ROW_FIELDS = [
    "department",
    "name",
    "cabinet",
    "as_of",
    "metrics",
    "day",
    "week",
    "month",
    "quarter",
    "below_target",
]

# ratio metric: 8/10 every day (0.8 against 0.9: below target), 10/10 on the day window
RATIO_WEEK = (56 / 70) / 0.9
RATIO_DAY = 1.0 / 0.9
# median metric, lower is better, target 10: median 5 -> 2.0 (above target)
MEDIAN_SCORE = 2.0


def _scorecard_data(client: TestClient, session: Session, admin: dict[str, str]) -> None:
    put_department(client, admin, "ops", "Operations Dept", cabinet="Streets")
    put_department(client, admin, "empty", "Empty Dept", cabinet=None)
    put_department(client, admin, "zeta", "Zeta", cabinet="Health")
    put_metric(client, admin, "in-ratio", "ops", name="In ratio", in_cityscore=True)
    put_metric(
        client,
        admin,
        "out-median",
        "ops",
        name="Out median",
        aggregation="median",
        direction="lower_is_better",
        targets=[{"effective_from": "2000-01-01", "value": 10.0}],
        in_cityscore=False,
    )
    put_metric(client, admin, "no-data", "ops", name="No data")
    put_metric(client, admin, "zeta-good", "zeta", name="Zeta good")
    put_metric(client, admin, "zeta-bad", "zeta", name="Zeta bad", in_cityscore=False)
    span = days("2026-01-01", 135)  # through 2026-05-15
    assert span[-1] == dt.date(2026, 5, 15)
    insert_values(
        session,
        "in-ratio",
        [
            {"date": d, "numerator": 10.0 if d == span[-1] else 8.0, "denominator": 10.0}
            for d in span
        ],
    )
    insert_values(
        session,
        "out-median",
        [{"date": d, "value": 5.0} for d in span]
        # on and after as_of: never "latest", never in a window
        + [{"date": "2026-05-16", "value": 99.0}, {"date": "2026-05-20", "value": 98.0}],
    )
    insert_values(
        session, "zeta-good", [{"date": d, "numerator": 10.0, "denominator": 10.0} for d in span]
    )
    # not in CityScore, below target: still counted by its department
    insert_values(
        session, "zeta-bad", [{"date": d, "numerator": 4.5, "denominator": 10.0} for d in span]
    )


def test_scorecard_list(client: TestClient, session: Session, admin: dict) -> None:
    _scorecard_data(client, session, admin)
    r = client.get(f"/v1/scorecards?as_of={AS_OF}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next"] is None
    rows = {row["department"]: row for row in body["data"]}
    assert [row["department"] for row in body["data"]] == ["empty", "ops", "zeta"]
    for row in body["data"]:
        assert list(row) == ROW_FIELDS  # the fields, in the published order
        assert row["as_of"] == AS_OF

    ops = rows["ops"]
    assert (ops["name"], ops["cabinet"], ops["metrics"]) == ("Operations Dept", "Streets", 3)
    # the mean over ALL the department's metrics with a score (in_cityscore or not)
    assert ops["week"] == pytest.approx((RATIO_WEEK + MEDIAN_SCORE) / 2, rel=1e-12)
    assert ops["day"] == pytest.approx((RATIO_DAY + MEDIAN_SCORE) / 2, rel=1e-12)
    assert ops["month"] == pytest.approx((RATIO_WEEK + MEDIAN_SCORE) / 2, rel=1e-12)
    assert ops["quarter"] == pytest.approx((RATIO_WEEK + MEDIAN_SCORE) / 2, rel=1e-12)
    assert ops["below_target"] == 1

    empty = rows["empty"]
    assert empty == {
        "department": "empty",
        "name": "Empty Dept",
        "cabinet": None,
        "as_of": AS_OF,
        "metrics": 0,
        "day": None,
        "week": None,
        "month": None,
        "quarter": None,
        "below_target": 0,
    }
    zeta = rows["zeta"]
    assert zeta["week"] == pytest.approx((1 / 0.9 + 0.5) / 2, rel=1e-12)
    assert zeta["below_target"] == 1 and zeta["metrics"] == 2

    # CityScore counts only in_cityscore metrics; the department score counts them all
    city = client.get(f"/v1/cityscore?as_of={AS_OF}").json()
    assert city["score"]["week"] == pytest.approx((RATIO_WEEK + 1 / 0.9) / 2, rel=1e-12)

    # paging and CSV
    page = client.get(f"/v1/scorecards?as_of={AS_OF}&limit=2").json()
    assert [row["department"] for row in page["data"]] == ["empty", "ops"]
    assert [row["department"] for row in client.get(page["next"]).json()["data"]] == ["zeta"]
    r = client.get(f"/v1/scorecards.csv?as_of={AS_OF}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content.startswith(
        b"department,name,cabinet,as_of,metrics,day,week,month,quarter,below_target\r\n"
    )
    csv_rows = parse_csv(r.content)
    assert csv_rows[0] == ROW_FIELDS
    assert [row[0] for row in csv_rows[1:]] == ["empty", "ops", "zeta"]
    assert csv_rows[1] == ["empty", "Empty Dept", "", AS_OF, "0", "", "", "", "", "0"]
    assert float(csv_rows[2][6]) == ops["week"] and csv_rows[2][9] == "1"

    # a date with no data: every score null, nothing below target
    rows = {
        row["department"]: row
        for row in client.get("/v1/scorecards?as_of=2020-01-01").json()["data"]
    }
    assert rows["ops"]["week"] is None and rows["ops"]["below_target"] == 0
    assert rows["ops"]["metrics"] == 3


def test_scorecard_list_default_as_of_is_today(
    client: TestClient, session: Session, frozen_clock: None
) -> None:
    put_department(client, admin_headers(session), "ops")
    rows = client.get("/v1/scorecards").json()["data"]
    today = "2026-05-15"  # 02:30 UTC on the 16th is still the 15th in New York
    assert rows[0]["as_of"] == today
    assert client.get("/v1/scorecards/ops").json()["as_of"] == today


def _metric(card: dict[str, Any], slug: str) -> dict[str, Any]:
    found = [m for m in card["metrics"] if m["metric"] == slug]
    assert len(found) == 1, slug
    return found[0]


def test_one_scorecard(client: TestClient, session: Session, admin: dict) -> None:
    _scorecard_data(client, session, admin)
    r = client.get(f"/v1/scorecards/ops?as_of={AS_OF}")
    assert r.status_code == 200, r.text
    card = r.json()
    assert set(card) == {"department", "name", "cabinet", "as_of", "score", "metrics"}
    assert (card["department"], card["name"], card["cabinet"], card["as_of"]) == (
        "ops",
        "Operations Dept",
        "Streets",
        AS_OF,
    )
    assert set(card["score"]) == {"day", "week", "month", "quarter"}
    assert card["score"]["week"] == pytest.approx((RATIO_WEEK + MEDIAN_SCORE) / 2, rel=1e-12)
    assert card["score"]["day"] == pytest.approx((RATIO_DAY + MEDIAN_SCORE) / 2, rel=1e-12)
    # the list row agrees with the card
    listed = {
        row["department"]: row for row in client.get(f"/v1/scorecards?as_of={AS_OF}").json()["data"]
    }["ops"]
    assert {w: listed[w] for w in ("day", "week", "month", "quarter")} == card["score"]
    assert [m["metric"] for m in card["metrics"]] == ["in-ratio", "no-data", "out-median"]

    ratio = _metric(card, "in-ratio")
    assert set(ratio) == {
        "metric",
        "name",
        "target",
        "latest",
        "day",
        "week",
        "month",
        "quarter",
        "status",
        "trend",
    }
    assert ratio["name"] == "In ratio" and ratio["target"] == 0.9
    assert ratio["week"] == pytest.approx(RATIO_WEEK, rel=1e-12)
    assert ratio["day"] == pytest.approx(RATIO_DAY, rel=1e-12)
    assert ratio["status"] == "below_target"
    assert ratio["latest"] == {"date": "2026-05-15", "value": 1.0}

    median = _metric(card, "out-median")
    assert median["week"] == MEDIAN_SCORE and median["status"] == "above_target"
    assert median["target"] == 10.0
    # the last value before as_of (values on and after as_of are not "latest")
    assert median["latest"] == {"date": "2026-05-15", "value": 5.0}

    none = _metric(card, "no-data")
    assert none["status"] == "no_data" and none["latest"] is None
    assert none["week"] is None and none["day"] is None

    # trend: 12 weeks, oldest first, Mondays, ending with the week window of as_of
    for m in card["metrics"]:
        trend = m["trend"]
        assert len(trend) == 12
        starts = [dt.date.fromisoformat(t["week_start"]) for t in trend]
        assert all(s.weekday() == 0 for s in starts)
        assert starts == sorted(starts)
        assert all((b - a).days == 7 for a, b in itertools.pairwise(starts))
        assert starts[-1] == dt.date(2026, 5, 4)
        assert starts[0] == dt.date(2026, 2, 16)
    assert ratio["trend"][-1]["score"] == pytest.approx(ratio["week"], rel=1e-12)
    assert all(t["score"] == pytest.approx(0.8 / 0.9) for t in ratio["trend"])
    assert all(t["score"] is None for t in none["trend"])
    assert all(t["score"] == MEDIAN_SCORE for t in median["trend"])

    # the trend reaches back before the data: weeks without data are null
    early = client.get("/v1/scorecards/ops?as_of=2026-02-02").json()
    trend = _metric(early, "in-ratio")["trend"]
    assert trend[-1]["week_start"] == "2026-01-26"
    assert trend[0]["score"] is None and trend[-1]["score"] == pytest.approx(0.8 / 0.9)
    # a week of exactly the target is above target
    put_metric(
        client,
        admin,
        "in-ratio",
        "ops",
        name="In ratio",
        targets=[{"effective_from": "2000-01-01", "value": 0.8}],
    )
    card = client.get(f"/v1/scorecards/ops?as_of={AS_OF}").json()
    assert _metric(card, "in-ratio")["week"] == 1.0
    assert _metric(card, "in-ratio")["status"] == "above_target"
    assert {r["department"]: r for r in client.get(f"/v1/scorecards?as_of={AS_OF}").json()["data"]}[
        "ops"
    ]["below_target"] == 0


def test_scorecard_errors(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "ops")
    r = client.get("/v1/scorecards/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    empty = client.get(f"/v1/scorecards/ops?as_of={AS_OF}").json()
    assert empty["metrics"] == [] and empty["score"] == {
        "day": None,
        "week": None,
        "month": None,
        "quarter": None,
    }
    for url in (
        "/v1/scorecards?as_of=2026-02-30",
        "/v1/scorecards?as_of=20260101",
        "/v1/scorecards/ops?as_of=tomorrow",
    ):
        r = client.get(url)
        assert r.status_code == 400, url
        assert r.headers["content-type"] == "application/problem+json"
