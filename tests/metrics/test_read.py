"""GET /v1/metrics and /v1/metrics/{slug}: the catalogue, filters and fields.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests._data import (
    instant,
    put_department,
    put_metric,
)

METRIC_FIELDS = {
    "slug",
    "name",
    "description",
    "department",
    "unit",
    "direction",
    "aggregation",
    "reference",
    "target",
    "targets",
    "baseline_years",
    "in_cityscore",
    "metric_logic",
    "source_url",
    "updated_at",
}


def slugs(body: dict[str, Any]) -> list[str]:
    return [row["slug"] for row in body["data"]]


# --- metrics -------------------------------------------------------------------------------


def _catalogue(client: TestClient, admin: dict[str, str]) -> None:
    put_department(client, admin, "parks")
    put_department(client, admin, "police")
    put_metric(
        client,
        admin,
        "a-ratio",
        "parks",
        name="Potholes on time",
        description="Share of POTHOLES filled within two days",
        aggregation="pooled_ratio",
        unit="share",
        source_url="https://example.org/potholes",
    )
    put_metric(
        client,
        admin,
        "b-median",
        "police",
        name="Response Time",
        aggregation="median",
        direction="lower_is_better",
        targets=[{"effective_from": "2000-01-01", "value": 6.0}],
        in_cityscore=False,
    )
    put_metric(
        client,
        admin,
        "c-base",
        "parks",
        name="Incidents",
        aggregation="mean",
        direction="lower_is_better",
        reference="baseline",
        baseline_years=3,
    )


def test_metrics_list_filters(client: TestClient, admin: dict[str, str]) -> None:
    _catalogue(client, admin)
    assert slugs(client.get("/v1/metrics").json()) == ["a-ratio", "b-median", "c-base"]
    assert slugs(client.get("/v1/metrics?department=parks").json()) == ["a-ratio", "c-base"]
    assert slugs(client.get("/v1/metrics?department=police").json()) == ["b-median"]
    assert slugs(client.get("/v1/metrics?in_cityscore=true").json()) == ["a-ratio", "c-base"]
    assert slugs(client.get("/v1/metrics?in_cityscore=false").json()) == ["b-median"]
    assert slugs(client.get("/v1/metrics?department=parks&in_cityscore=false").json()) == []
    # q: case-insensitive, in slug, name or description
    assert slugs(client.get("/v1/metrics?q=potholes").json()) == ["a-ratio"]
    assert slugs(client.get("/v1/metrics?q=RESPONSE").json()) == ["b-median"]
    assert slugs(client.get("/v1/metrics?q=c-BASE").json()) == ["c-base"]
    assert slugs(client.get("/v1/metrics?q=100%").json()) == []
    assert slugs(client.get("/v1/metrics?q=_").json()) == []
    # unknown values: an empty list, not an error
    assert client.get("/v1/metrics?department=nope").json() == {"data": [], "next": None}
    assert client.get("/v1/metrics?q=zzz").json() == {"data": [], "next": None}
    r = client.get("/v1/metrics?in_cityscore=maybe")
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"


def test_metric_fields_and_targets(
    client: TestClient, admin: dict[str, str], frozen_clock: None
) -> None:
    _catalogue(client, admin)
    # the frozen clock's city date is 2026-05-15: a target from the 16th (already the date in
    # UTC) is not yet in force
    future = "2026-05-16"
    put_metric(
        client,
        admin,
        "d-two-targets",
        "parks",
        name="Two targets",
        targets=[
            {"effective_from": "2020-01-01", "value": 0.95},
            {"effective_from": "2000-01-01", "value": 0.8},
            {"effective_from": future, "value": 0.99},
        ],
    )
    ratio = client.get("/v1/metrics/a-ratio").json()
    assert set(ratio) == METRIC_FIELDS
    assert ratio["slug"] == "a-ratio" and ratio["department"] == "parks"
    assert ratio["name"] == "Potholes on time" and ratio["unit"] == "share"
    assert ratio["description"] == "Share of POTHOLES filled within two days"
    assert ratio["direction"] == "higher_is_better" and ratio["aggregation"] == "pooled_ratio"
    assert ratio["reference"] == "target" and ratio["target"] == 0.9
    assert ratio["targets"] == [{"effective_from": "2000-01-01", "value": 0.9}]
    assert ratio["baseline_years"] == 10 and ratio["in_cityscore"] is True
    assert ratio["metric_logic"] == "sum(numerator_value)/sum(denominator_value)/target"
    assert ratio["source_url"] == "https://example.org/potholes"
    instant(ratio["updated_at"])

    median = client.get("/v1/metrics/b-median").json()
    assert median["metric_logic"] == "target / median"
    assert median["target"] == 6.0 and median["in_cityscore"] is False
    assert median["unit"] is None and median["source_url"] is None

    base = client.get("/v1/metrics/c-base").json()
    assert base["targets"] == [] and base["target"] is None
    assert base["reference"] == "baseline" and base["baseline_years"] == 3
    assert base["metric_logic"] == "historical_average / current_average"

    two = client.get("/v1/metrics/d-two-targets").json()
    assert two["target"] == 0.95
    assert two["targets"] == [
        {"effective_from": "2000-01-01", "value": 0.8},
        {"effective_from": "2020-01-01", "value": 0.95},
        {"effective_from": future, "value": 0.99},
    ]
    # the list carries the same documents
    listed = {m["slug"]: m for m in client.get("/v1/metrics").json()["data"]}
    assert listed["d-two-targets"] == two and listed["c-base"] == base
    assert client.get("/v1/metrics/nope").status_code == 404
