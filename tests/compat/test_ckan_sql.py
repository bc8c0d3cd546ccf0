"""``datastore_search_sql``: 403 by default; when enabled, one whitelisted SELECT."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.demo import service as demo
from api.settings import Settings

URL = "/api/3/action/datastore_search_sql"


@pytest.fixture
def settings() -> Settings:
    return Settings(rate_limit_enabled=False, ckan_datastore_sql_enabled=True)


def test_sql_when_enabled(client: TestClient, session: Session, settings: Settings) -> None:
    demo.load(session, years=1, metrics=3, today=settings.today())
    session.flush()
    values = client.get("/v1/values", params={"limit": 10000}).json()["data"]
    metric = values[0]["metric"]
    sql = (
        f"SELECT date, value AS v FROM \"daily-values\" WHERE metric = '{metric}' "
        "ORDER BY v DESC, date LIMIT 3 OFFSET 1"
    )
    r = client.get(URL, params={"sql": sql})
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["fields"] == [{"id": "date", "type": "timestamp"}, {"id": "v", "type": "numeric"}]
    mine = sorted(
        (r for r in values if r["metric"] == metric), key=lambda r: (-r["value"], r["date"])
    )
    assert result["records"] == [{"date": m["date"], "v": m["value"]} for m in mine[1:4]]

    grouped = client.post(
        URL, json={"sql": 'SELECT metric, count(*) FROM "daily-values" GROUP BY metric'}
    )
    counts = {m: sum(1 for r in values if r["metric"] == m) for m in {r["metric"] for r in values}}
    assert {r["metric"]: r["count"] for r in grouped.json()["result"]["records"]} == counts


@pytest.mark.parametrize(
    ("sql", "status", "message"),
    [
        ("DROP TABLE metrics", 409, "Could not parse sql"),
        ('SELECT * FROM "daily-values"; DELETE FROM metrics', 409, "Could not parse sql"),
        ("SELECT 1", 409, "end of input"),
        ('SELECT secret FROM "daily-values"', 409, "No such column: secret"),
        ('SELECT * FROM "nope"', 404, "not found"),
        ('SELECT * FROM "dd657c02-3443-4c00-8b29-56a40cfe7ee4"', 409, "cannot be queried"),
        ('SELECT * FROM "daily-values" LIMIT 1.5', 409, "whole number"),
        ("", 409, "Missing value"),
    ],
)
def test_sql_refuses_everything_else(
    client: TestClient, sql: str, status: int, message: str
) -> None:
    r = client.get(URL, params={"sql": sql})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]
