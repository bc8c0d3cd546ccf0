"""ETags cover exactly the rows behind a response (issue 10).

``/v1/values?metric=A`` moves only when A is written; ``/v1/scorecards/{dept}`` only when
that department or one of its metrics is written. A write elsewhere leaves both as they were.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests._data import admin_headers, put_department, put_metric

URL = "/v1/ingest/values"
PAGES = (
    "/v1/values?metric=a1",
    "/v1/values?department=one",
    "/v1/scorecards/one?as_of=2026-06-01",
)


def _etags(client: TestClient) -> dict[str, str]:
    out = {}
    for page in PAGES:
        r = client.get(page)
        assert r.status_code == 200, r.text
        out[page] = r.headers["etag"]
    return out


def _value(metric: str, day: str, value: float) -> dict[str, Any]:
    return {"metric": metric, "date": day, "value": value}


def _post(client: TestClient, headers: dict[str, str], rows: list[dict[str, Any]]) -> None:
    r = client.post(URL, json=rows, headers=headers)
    assert r.status_code == 200, r.text


def test_unrelated_writes_leave_etags_related_ones_move_them(
    client: TestClient, session: Session
) -> None:
    headers = admin_headers(session)
    put_department(client, headers, "one")
    put_department(client, headers, "two")
    kind = {"aggregation": "mean", "reference": "baseline"}
    put_metric(client, headers, "a1", "one", **kind)
    put_metric(client, headers, "a2", "one", **kind)
    put_metric(client, headers, "b1", "two", **kind)
    _post(client, headers, [_value(m, "2026-05-20", 3.0) for m in ("a1", "a2", "b1")])
    before = _etags(client)

    # Another department's metric: values, definition, the department itself.
    _post(client, headers, [_value("b1", "2026-05-21", 4.0)])
    put_metric(client, headers, "b1", "two", name="renamed", **kind)
    put_department(client, headers, "two", "Two renamed")
    assert _etags(client) == before

    # A sibling metric in the same department: the scorecard moves, a1's values do not.
    _post(client, headers, [_value("a2", "2026-05-21", 5.0)])
    after_sibling = _etags(client)
    assert after_sibling["/v1/values?metric=a1"] == before["/v1/values?metric=a1"]
    assert after_sibling["/v1/scorecards/one?as_of=2026-06-01"] != before[PAGES[2]]
    assert after_sibling["/v1/values?department=one"] != before["/v1/values?department=one"]

    # a1 itself: everything that shows it moves.
    _post(client, headers, [_value("a1", "2026-05-21", 6.0)])
    after_a1 = _etags(client)
    assert all(after_a1[p] != after_sibling[p] for p in PAGES)

    # The department's own row moves its scorecard.
    put_department(client, headers, "one", "One renamed")
    assert _etags(client)[PAGES[2]] != after_a1[PAGES[2]]

    # A metric moving into the department changes the scorecard's set of metrics.
    moved = _etags(client)
    put_metric(client, headers, "b1", "one", name="renamed", **kind)
    assert _etags(client)[PAGES[2]] != moved[PAGES[2]]


def test_a_replayed_batch_leaves_the_etags(client: TestClient, session: Session) -> None:
    headers = admin_headers(session)
    put_department(client, headers, "one")
    put_metric(client, headers, "a1", "one", aggregation="mean", reference="baseline")
    rows = [_value("a1", "2026-05-20", 3.0)]
    _post(client, headers, rows)
    before = _etags(client)
    _post(client, headers, rows)  # unchanged: nothing was written
    assert _etags(client) == before


def test_bumping_many_scopes_is_one_statement(session: Session) -> None:
    """A batch touching 1,000 metrics moves 1,000 counters in one statement, not 1,000
    (one round trip per scope cost 0.6 s of a one-day ingest for every metric)."""
    from sqlalchemy import event, select

    from api.changes import service as changes
    from db.models import DataState

    connection = session.connection()
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(connection, "before_cursor_execute", count)
    try:
        changes.bump(session, [f"metric:{m}" for m in range(1000)] + ["values"])
        changes.bump(session, ["values", "metric:7"])
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert len([s for s in statements if "data_state" in s]) == 2  # (and one NOTIFY each)
    table = DataState.__table__  # type: ignore[attr-defined]
    found = dict(session.execute(select(table.c.scope, table.c.version)).all())
    assert found["values"] == 2 and found["metric:7"] == 2 and found["metric:999"] == 1
    assert len([s for s in found if s.startswith("metric:")]) == 1000
