"""Request ids: taken from ``X-Request-ID`` when it is safe to log and echo, else generated."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = b"x-request-id"
MAX_LENGTH = 128
# Letters, digits and a few separators: enough for UUIDs, W3C trace ids and most proxies'
# formats; nothing that could forge a log line, a header or HTML.
_SAFE = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:+=/@-]{0,%d}" % (MAX_LENGTH - 1))

current: ContextVar[str | None] = ContextVar("request_id", default=None)


def from_header(raw: bytes | None) -> str:
    """The client's id when it is 1-128 safe characters, else a new random one."""
    if raw is not None and _SAFE.fullmatch(raw):
        return raw.decode("ascii")
    return uuid.uuid4().hex
