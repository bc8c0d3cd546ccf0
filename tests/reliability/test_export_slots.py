"""Exports take at most a share of the pool (issue 9 item 4; CI found 30 stalled CSV readers
on SQLite still starving ``/v1/metrics`` once every export queued for a connection)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from api.http.streaming import SLOT_KEY, ExportSlots, is_export, release_with_slot


class Exporting:
    """A route that holds its export until told, like a spool draining a slow store."""

    def __init__(self, hand_off: bool = False) -> None:
        self.running = 0
        self.peak = 0
        self.go = asyncio.Event()
        self.hand_off = hand_off
        self.releases: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        if scope["path"].endswith("slow"):
            await self.go.wait()
        if self.hand_off:
            self.releases.append(release_with_slot(scope, lambda: None))
        self.running -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def csv_scope(path: str = "/v1/values", **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": [], **extra}


def test_what_counts_as_an_export() -> None:
    assert is_export(csv_scope(state={"csv_suffix": True}))
    assert is_export(csv_scope(headers=[(b"accept", b"text/csv")]))
    assert is_export(csv_scope("/datastore/dump/abc"))
    assert not is_export(csv_scope())
    assert not is_export(csv_scope(headers=[(b"accept", b"application/json")]))
    assert not is_export({**csv_scope(state={"csv_suffix": True}), "method": "POST"})


@pytest.mark.anyio
async def test_exports_beyond_the_slots_wait_then_get_503_and_json_never_waits() -> None:
    inner = Exporting()
    app = ExportSlots(inner, slots=2, timeout=0.3)
    csv = {"Accept": "text/csv"}
    async with client(app) as c:
        held = [asyncio.create_task(c.get("/slow", headers=csv)) for _ in range(2)]
        await asyncio.sleep(0.05)
        late = await c.get("/x", headers=csv)
        assert late.status_code == 503
        assert late.headers["retry-after"] == "1"
        assert late.headers["content-type"].startswith("application/problem+json")
        assert late.json()["status"] == 503
        assert (await c.get("/json")).status_code == 200  # not an export: no slot needed
        inner.go.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        assert (await c.get("/x", headers=csv)).status_code == 200  # the slots came back
    assert inner.peak == 3  # two exports and the JSON read, never a third export


@pytest.mark.anyio
async def test_a_handed_off_slot_is_freed_by_the_spool_from_its_thread_and_only_once() -> None:
    inner = Exporting(hand_off=True)
    app = ExportSlots(inner, slots=1, timeout=0.2)
    csv = {"Accept": "text/csv"}
    async with client(app) as c:
        assert (await c.get("/x", headers=csv)).status_code == 200
        # The response ended but the spool still drains the store: the slot stays taken.
        assert (await c.get("/x", headers=csv)).status_code == 503
        release = inner.releases[0]
        worker = threading.Thread(target=release)
        worker.start()
        worker.join()
        release()  # a second release is a no-op, not a second slot
        await asyncio.sleep(0.01)
        assert (await c.get("/x", headers=csv)).status_code == 200
        assert (await c.get("/x", headers=csv)).status_code == 503


def test_a_request_without_a_slot_releases_only_its_session() -> None:
    calls: list[str] = []
    release = release_with_slot({"state": {}}, lambda: calls.append("session"))
    release()
    assert calls == ["session"]
    assert SLOT_KEY == "export_slot"
