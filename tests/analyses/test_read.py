"""Analyses: PUT/GET, sanitised HTML, filters and admin-only writes.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import (
    department_headers,
    put_department,
)


def slugs(body: dict[str, Any]) -> list[str]:
    return [row["slug"] for row in body["data"]]


# --- analyses ------------------------------------------------------------------------------

UNSAFE = (
    "# Findings\n\nHello <script>alert(1)</script> world.\n\n"
    '[click me](javascript:alert(1)) and <a href="javascript:alert(2)">raw</a>\n\n'
    '<img src=x onerror="alert(3)">\n'
)


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(attrs)))


def _tags(html: str) -> list[tuple[str, tuple[tuple[str, str | None], ...]]]:
    parser = _TagCollector()
    parser.feed(html)
    return parser.tags


def _analysis(**overrides: Any) -> dict[str, Any]:
    body = {
        "title": "EMS Ambulance Allocation",
        "summary": "Where ambulances wait",
        "body_markdown": "Some **bold** text about response times.",
        "published_on": "2026-03-01",
        "departments": ["ems"],
        "tags": ["Operations", "health"],
        "metrics": [],
    }
    body.update(overrides)
    return body


def test_analyses_put_get_and_sanitise(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "ems")
    r = client.put("/v1/analyses/ems-allocation", json=_analysis(), headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["slug"] == "ems-allocation"
    assert "<strong>bold</strong>" in created["body_html"]
    r = client.put(
        "/v1/analyses/ems-allocation", json=_analysis(body_markdown=UNSAFE), headers=admin
    )
    assert r.status_code == 200, r.text

    doc = client.get("/v1/analyses/ems-allocation").json()
    assert set(doc) == {
        "slug",
        "title",
        "summary",
        "body_markdown",
        "body_html",
        "published_on",
        "departments",
        "tags",
        "metrics",
        "updated_at",
    }
    assert doc["body_markdown"] == UNSAFE
    tags = _tags(doc["body_html"])
    assert ("h1", ()) in tags
    assert all(tag not in ("script", "img", "iframe") for tag, _ in tags)
    for _tag, attrs in tags:
        for name, value in attrs:
            assert not name.startswith("on")
            assert "javascript:" not in (value or "").lower().replace(" ", "")
    assert "<script" not in doc["body_html"].lower()
    assert doc["departments"] == ["ems"] and doc["published_on"] == "2026-03-01"
    assert client.get("/v1/analyses/nope").status_code == 404


def test_analyses_filters(client: TestClient, session: Session, admin: dict) -> None:
    put_department(client, admin, "ems")
    put_department(client, admin, "311")
    for slug, body in (
        ("ems-allocation", _analysis()),
        (
            "call-center",
            _analysis(
                title="311 Call Center Improvements",
                summary="Faster answers",
                body_markdown="Calls answered within 30 seconds.",
                published_on="2026-04-01",
                departments=["311"],
                tags=["customer-service"],
            ),
        ),
        (
            "overview",
            _analysis(
                title="Data Analytics overview",
                summary=None,
                body_markdown="What the team does.",
                published_on="2026-04-01",
                departments=["ems", "311"],
                tags=[],
            ),
        ),
    ):
        r = client.put(f"/v1/analyses/{slug}", json=body, headers=admin)
        assert r.status_code == 201, r.text

    def listed(query: str = "") -> list[str]:
        r = client.get(f"/v1/analyses{query}")
        assert r.status_code == 200, r.text
        return slugs(r.json())

    # newest first, slug breaks ties
    assert listed() == ["call-center", "overview", "ems-allocation"]
    assert listed("?department=ems") == ["overview", "ems-allocation"]
    assert listed("?department=311") == ["call-center", "overview"]
    assert listed("?tag=operations") == ["ems-allocation"]
    assert listed("?tag=customer-service") == ["call-center"]
    assert listed("?q=ANSWERED") == ["call-center"]
    assert listed("?q=ambulances") == ["ems-allocation"]
    assert listed("?q=overview") == ["overview"]
    assert listed("?department=nope") == []
    assert listed("?tag=nope") == []
    assert listed("?q=zzz") == []
    assert listed("?department=ems&tag=health") == ["ems-allocation"]
    page = client.get("/v1/analyses?limit=2").json()
    assert slugs(page) == ["call-center", "overview"] and page["next"]
    assert slugs(client.get(page["next"]).json()) == ["ems-allocation"]


def test_analyses_writes_need_an_admin_key(
    client: TestClient, session: Session, admin: dict
) -> None:
    put_department(client, admin, "ems")
    dept_key = department_headers(session, "ems")
    body = _analysis()
    r = client.put("/v1/analyses/a1", json=body)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    r = client.put("/v1/analyses/a1", json=body, headers={"Authorization": "Bearer cs_wrong"})
    assert r.status_code == 401
    r = client.put("/v1/analyses/a1", json=body, headers=dept_key)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/analyses/a1").status_code == 404

    r = client.put("/v1/analyses/a1", json=_analysis(departments=["nope"]), headers=admin)
    assert r.status_code == 422
    problem = r.json()
    assert problem["status"] == 422 and problem["errors"]
    assert {e["field"] for e in problem["errors"]} == {"departments.0"}
    r = client.put("/v1/analyses/a1", json=_analysis(published_on="2026-02-30"), headers=admin)
    assert r.status_code == 422 and r.json()["errors"]

    assert client.put("/v1/analyses/a1", json=body, headers=admin).status_code == 201
    assert client.delete("/v1/analyses/a1").status_code == 401
    assert client.delete("/v1/analyses/a1", headers=dept_key).status_code == 403
    assert client.get("/v1/analyses/a1").status_code == 200
    r = client.delete("/v1/analyses/a1", headers=admin)
    assert r.status_code == 204 and r.content == b""
    assert client.get("/v1/analyses/a1").status_code == 404
    assert client.delete("/v1/analyses/a1", headers=admin).status_code == 404
    assert slugs(client.get("/v1/analyses").json()) == []
