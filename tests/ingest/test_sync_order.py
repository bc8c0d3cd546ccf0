"""``updated_at`` comes from the store in commit order, not from the app server's clock.

An app server whose clock is behind (or a second server with another clock) must not stamp
a later batch with an earlier instant: a client syncing with ``updated_since`` = the largest
``updated_at`` it holds would miss that batch for good.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import admin_headers, put_department, put_metric

URL = "/v1/ingest/values"


def _latest(client: TestClient, since: str | None = None) -> list[dict[str, object]]:
    query = "/v1/values?metric=m&limit=10000" + (f"&updated_since={since}" if since else "")
    r = client.get(query)
    assert r.status_code == 200, r.text
    rows: list[dict[str, object]] = r.json()["data"]
    return rows


def test_a_later_batch_is_stamped_later_whatever_the_app_clock(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = admin_headers(session)
    put_department(client, headers, "ops")
    put_metric(client, headers, "m", "ops", aggregation="mean", reference="baseline")
    first = [{"metric": "m", "date": "2026-05-01", "value": 1.0}]
    assert client.post(URL, json=first, headers=headers).status_code == 200
    synced = max(str(r["updated_at"]) for r in _latest(client))

    # This app server's clock is an hour behind the store's.
    behind = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
    monkeypatch.setattr("db.models.utcnow", lambda: behind)
    monkeypatch.setattr("api.ingest.service.utcnow", lambda: behind, raising=False)
    second = [{"metric": "m", "date": "2026-05-02", "value": 2.0}]
    assert client.post(URL, json=second, headers=headers).status_code == 200

    changed = _latest(client, synced)
    assert [r["date"] for r in changed] == ["2026-05-02"]
    assert str(changed[0]["updated_at"]) > synced
