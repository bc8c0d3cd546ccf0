"""GET /v1/departments and /v1/departments/{slug}.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests._data import (
    instant,
    put_department,
)


def slugs(body: dict[str, Any]) -> list[str]:
    return [row["slug"] for row in body["data"]]


# --- departments ---------------------------------------------------------------------------


def test_departments_list_and_one(client: TestClient, admin: dict[str, str]) -> None:
    assert client.get("/v1/departments").json() == {"data": [], "next": None}
    put_department(
        client,
        admin,
        "public-works",
        "Public Works",
        cabinet="Streets",
        description="Roads",
        url="https://example.org/pwd",
        expect=201,
    )
    put_department(client, admin, "311", "311 Call Center", cabinet=None, expect=201)

    body = client.get("/v1/departments").json()
    assert slugs(body) == ["311", "public-works"]
    assert body["next"] is None
    pwd = body["data"][1]
    assert set(pwd) == {"slug", "name", "cabinet", "description", "url", "updated_at"}
    assert pwd["name"] == "Public Works" and pwd["cabinet"] == "Streets"
    assert pwd["description"] == "Roads" and pwd["url"] == "https://example.org/pwd"
    instant(pwd["updated_at"])
    assert body["data"][0]["cabinet"] is None

    r = client.get("/v1/departments/public-works")
    assert r.status_code == 200
    assert r.json() == pwd
    assert client.get("/v1/departments/nope").status_code == 404
