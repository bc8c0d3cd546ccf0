"""Bulk downloads that never hold a store connection while waiting on a client.

A worker thread drains the export (a COPY or a cursor) into a temporary file at the store's
speed and then releases the request's session; the response reads the file at the client's
speed. A client that stops reading, or disconnects, costs a file and a coroutine, never a
pooled connection, and nothing ever blocks the event loop: the export runs in its own thread
and file reads go through the threadpool. Memory is constant (one chunk in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ServiceUnavailable, api_error_response
from api.http.formats import accept_prefers_csv

log = logging.getLogger("cityscore.streaming")

READ_CHUNK = 256 * 1024
WAIT_S = 1.0  # a reader waiting for the export re-checks this often
SLOT_KEY = "export_slot"


class Spool:
    """A file one thread appends to while a coroutine reads it; either may stop first."""

    def __init__(self) -> None:
        # Closed by whichever of the two users leaves last (see _leave).
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        self._cond = threading.Condition()
        self.written = 0
        self.done = False
        self.failed: BaseException | None = None
        self.abandoned = False
        self._users = 2  # the filling thread and the reading coroutine

    def fill(self, chunks: Iterator[bytes], release: Callable[[], None]) -> None:
        """Drain ``chunks`` into the file (in its own thread), then release the store."""
        try:
            for chunk in chunks:
                if self.abandoned:
                    break
                if chunk:
                    os.write(self._file.fileno(), chunk)
                    with self._cond:
                        self.written += len(chunk)
                        self._cond.notify_all()
        except BaseException as exc:  # reported to the reader, which ends the response
            self.failed = exc
            log.warning("export failed mid-stream: %r", exc)
        finally:
            close = getattr(chunks, "close", None)
            try:
                if close is not None:
                    close()  # a generator's finally closes its cursor, in this same thread
            finally:
                release()
                with self._cond:
                    self.done = True
                    self._cond.notify_all()
                self._leave()

    def _leave(self) -> None:
        with self._cond:
            self._users -= 1
            last = self._users == 0
        if last:
            self._file.close()

    def read_at(self, offset: int) -> bytes | None:
        """Up to READ_CHUNK bytes from ``offset``; b"" at the end; None: nothing yet, ask again."""
        with self._cond:
            if self.written <= offset and not self.done:
                self._cond.wait(timeout=WAIT_S)
            size = min(READ_CHUNK, self.written - offset)
            if size <= 0:
                if not self.done:
                    return None
                if self.failed is not None:
                    raise RuntimeError("the export failed mid-stream") from self.failed
                return b""
        return os.pread(self._file.fileno(), size, offset)

    async def chunks(self) -> AsyncIterator[bytes]:
        offset = 0
        try:
            while True:
                data = await to_thread.run_sync(self.read_at, offset)
                if data is None:
                    continue
                if not data:
                    return
                offset += len(data)
                yield data
        finally:
            self.abandoned = True  # the client left (or was served): stop the export early
            self._leave()


def spooled(chunks: Iterator[bytes], release: Callable[[], None]) -> AsyncIterator[bytes]:
    """Stream ``chunks`` through a spool. The export starts at once in its own thread and
    ``release`` runs there when it ends, whether or not anybody reads the response."""
    spool = Spool()
    thread = threading.Thread(
        target=spool.fill, args=(chunks, release), name="cityscore-export", daemon=True
    )
    thread.start()
    return spool.chunks()


class ExportSlot:
    """One export's claim on a slot; released once, from any thread, whoever ends it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, semaphore: asyncio.Semaphore) -> None:
        self._loop = loop
        self._semaphore = semaphore
        self._lock = threading.Lock()
        self._released = False
        self.handed_off = False  # a spool owns it now and releases it when the store is done

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is shutting down
            self._loop.call_soon_threadsafe(self._semaphore.release)


def is_export(scope: Scope) -> bool:
    """A bulk download: a GET or HEAD for CSV (by ``.csv`` suffix, Accept, or CKAN's dump)."""
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return False
    if scope.get("state", {}).get("csv_suffix") or scope["path"].startswith("/datastore/dump/"):
        return True
    accept = next((v for k, v in scope.get("headers", []) if k == b"accept"), b"")
    return accept_prefers_csv(accept.decode("latin-1"))


class ExportSlots:
    """At most ``slots`` exports drain the store at once, so downloads never take the pool.

    An export waits for a slot before its route runs, so before it holds any connection; one
    that waits ``timeout`` seconds is answered 503 with ``Retry-After``. The slot is freed when
    the spool has drained the store (``release_with_slot``), not when the client has read.
    """

    def __init__(self, app: ASGIApp, slots: int, timeout: float) -> None:
        self.app = app
        self.slots = slots
        self.timeout = timeout
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_export(scope):
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.slots)
        try:
            await asyncio.wait_for(self._semaphore.acquire(), self.timeout)
        except TimeoutError:
            log.warning("every export slot stayed busy for %.1f s", self.timeout)
            busy = ServiceUnavailable(
                "Too many downloads are running; retry shortly.", headers={"Retry-After": "1"}
            )
            await api_error_response(busy)(scope, receive, send)
            return
        slot = ExportSlot(asyncio.get_running_loop(), self._semaphore)
        scope.setdefault("state", {})[SLOT_KEY] = slot
        try:
            await self.app(scope, receive, send)
        finally:
            if not slot.handed_off:
                slot.release()


def release_with_slot(scope: Scope, release: Callable[[], None]) -> Callable[[], None]:
    """``release``, then the request's export slot (if it has one): the spool's clean-up."""
    slot: ExportSlot | None = scope.get("state", {}).get(SLOT_KEY)
    if slot is None:
        return release
    slot.handed_off = True

    def both() -> None:
        try:
            release()
        finally:
            slot.release()

    return both
