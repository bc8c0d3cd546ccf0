"""The audit log (GET /v1/audit) and key expiry and rotation, on both stores."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlmodel import Session

from api.keys import service as keys
from db.models import ApiKey, AuditEntry, utcnow
from tests._data import bearer, department_headers, put_department, put_metric

A = AuditEntry.__table__  # type: ignore[attr-defined]
K = ApiKey.__table__  # type: ignore[attr-defined]
INGEST = "/v1/ingest/values"
VALUES = [{"metric": "calls-on-time", "date": "2026-05-01", "numerator": 9, "denominator": 10}]


def audit(client: TestClient, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/audit", headers=admin, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "private, no-store"
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


def audit_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(A)).scalar_one())


@pytest.fixture
def catalogue(client: TestClient, admin: dict[str, str]) -> None:
    put_department(client, admin, "311")
    put_metric(client, admin, "calls-on-time", "311")


def test_every_write_is_audited_newest_first(
    client: TestClient, session: Session, admin: dict[str, str], catalogue: None
) -> None:
    dept = department_headers(session, "311")
    r = client.post(INGEST, json=VALUES, headers={**dept, "X-Request-ID": "nightly-42"})
    assert r.status_code == 200, r.text
    batch = r.json()["batch"]
    assert client.post(INGEST, json=VALUES, params={"dry_run": "true"}, headers=dept).is_success
    body = {"title": "T", "summary": None, "body_markdown": "x", "published_on": "2026-05-01"}
    assert client.put("/v1/analyses/a-note", json=body, headers=admin).status_code == 201
    assert client.delete("/v1/analyses/a-note", headers=admin).status_code == 204

    rows = audit(client, admin)
    assert [(r["action"], r["target"], r["department"]) for r in rows] == [
        ("analysis.delete", "a-note", None),
        ("analysis.put", "a-note", None),
        ("ingest", str(batch), "311"),  # the dry run wrote nothing and is not audited
        ("key.create", rows[3]["target"], "311"),
        ("metric.put", "calls-on-time", "311"),
        ("department.put", "311", "311"),
        ("key.create", rows[6]["target"], None),
    ]
    assert all(set(r) == {"at", "key_id", "department", "action", "target", "detail"} for r in rows)
    admin_id, dept_id = int(rows[6]["target"]), int(rows[3]["target"])
    assert [r["key_id"] for r in rows] == [
        admin_id,
        admin_id,
        dept_id,
        None,
        admin_id,
        admin_id,
        None,
    ]
    ingest = rows[2]["detail"]
    assert ingest["request_id"] == "nightly-42" == r.headers["x-request-id"]
    assert {k: ingest[k] for k in ("received", "created", "updated", "unchanged", "deleted")} == {
        "received": 1,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
    }
    assert rows[5]["detail"]["created"] is True and rows[3]["detail"]["admin"] is False
    assert all(r["at"].endswith("Z") for r in rows)
    text = client.get("/v1/audit", headers=admin).text
    for token in (admin["Authorization"], dept["Authorization"]):
        assert token.removeprefix("Bearer ") not in text


def test_failed_and_replayed_writes_leave_no_audit_row(
    client: TestClient, session: Session, admin: dict[str, str], catalogue: None
) -> None:
    dept = department_headers(session, "311")
    before = audit_count(session)
    bad = [{"metric": "calls-on-time", "date": "2026-13-01", "numerator": 1, "denominator": 2}]
    assert client.post(INGEST, json=bad, headers=dept).status_code == 422
    foreign = client.put(
        "/v1/metrics/x", json={"name": "x", "department": "nowhere"}, headers=admin
    )
    assert foreign.status_code >= 400
    assert audit_count(session) == before
    idem = {**dept, "Idempotency-Key": "once"}
    assert client.post(INGEST, json=VALUES, headers=idem).status_code == 200
    replay = client.post(INGEST, json=VALUES, headers=idem)
    assert replay.headers.get("idempotent-replayed") == "true"
    assert audit_count(session) == before + 1


def test_audit_is_admin_only_and_keyset_paged(
    client: TestClient, session: Session, admin: dict[str, str], catalogue: None
) -> None:
    dept = department_headers(session, "311")
    assert client.get("/v1/audit").status_code == 401
    assert client.get("/v1/audit", headers=dept).status_code == 403
    everything = audit(client, admin)
    assert len(everything) == 4
    seen: list[dict[str, Any]] = []
    url: str | None = "/v1/audit?limit=3"
    pages = 0
    while url:
        r = client.get(url, headers=admin)
        assert r.status_code == 200, r.text
        seen += r.json()["data"]
        url = r.json()["next"]
        assert (url is None) == ("link" not in r.headers)
        pages += 1
    assert pages == 2 and seen == everything
    assert client.get("/v1/audit.csv", headers=admin).status_code == 404
    for params in ({"limit": "0"}, {"limit": "10001"}, {"limit": "x"}, {"cursor": "junk"}):
        r = client.get("/v1/audit", headers=admin, params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"


def test_an_expired_key_is_401(client: TestClient, session: Session, catalogue: None) -> None:
    key, token = keys.create(
        session, name="soon", department="311", expires_at=utcnow() + dt.timedelta(days=1)
    )
    session.flush()
    assert client.post(INGEST, json=VALUES, headers=bearer(token)).status_code == 200
    session.execute(
        update(K).where(K.c.id == key.id).values(expires_at=utcnow() - dt.timedelta(seconds=1))
    )
    session.flush()
    session.expire_all()
    r = client.post(INGEST, json=VALUES, headers=bearer(token))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    with pytest.raises(Exception, match="not in the future"):
        keys.create(session, name="past", admin=True, expires_at=utcnow())


def test_rotation_two_valid_keys_then_revoke_the_old(
    client: TestClient, session: Session, admin: dict[str, str], catalogue: None
) -> None:
    old, old_token = keys.create(session, name="2025 job", department="311")
    new, new_token = keys.create(
        session, name="2026 job", department="311", expires_at=utcnow() + dt.timedelta(days=365)
    )
    session.flush()
    for token, day in ((old_token, "2026-05-02"), (new_token, "2026-05-03")):
        row = {**VALUES[0], "date": day}
        assert client.post(INGEST, json=[row], headers=bearer(token)).status_code == 200
    assert old.id is not None
    keys.revoke(session, old.id)
    session.flush()
    assert client.post(INGEST, json=VALUES, headers=bearer(old_token)).status_code == 401
    assert client.post(INGEST, json=VALUES, headers=bearer(new_token)).status_code == 200
    actions = [(r["action"], r["target"], r["key_id"]) for r in audit(client, admin)[:5]]
    assert actions[0] == ("ingest", actions[0][1], new.id)
    assert actions[1] == ("key.revoke", str(old.id), None)
    assert [a[2] for a in actions[2:4]] == [new.id, old.id]
    assert actions[4] == ("key.create", str(new.id), None)
