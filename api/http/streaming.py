"""Bulk downloads that never hold a store connection while waiting on a client.

A worker thread drains the export (a COPY or a cursor) into a temporary file at the store's
speed and then releases the request's session; the response reads the file at the client's
speed. A client that stops reading, or disconnects, costs a file and a coroutine, never a
pooled connection, and nothing ever blocks the event loop: the export runs in its own thread
and file reads go through the threadpool. Memory is constant (one chunk in flight).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from anyio import to_thread

log = logging.getLogger("cityscore.streaming")

READ_CHUNK = 256 * 1024
WAIT_S = 1.0  # a reader waiting for the export re-checks this often


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
