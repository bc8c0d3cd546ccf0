"""JSON logs, one object a line, written off the event loop.

``configure()`` routes every logger (uvicorn's included) through a ``QueueHandler``: the event
loop only formats a small dict and enqueues it; a background thread does the blocking write
to stderr. uvicorn's own access log is switched off, because ``ObservabilityMiddleware`` writes
a richer line per request.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
import sys
import time
from typing import Any

import orjson

from api.observability import request_id

ACCESS_LOGGER = "cityscore.access"
# Defence in depth: whatever a library or an exception message puts in a log line, an API key
# or a credential after an auth scheme never reaches the log.
_SECRETS = re.compile(r"\bcs_[A-Za-z0-9_-]{16,}|(?i:\b(bearer|basic)\s+)[^\s\"',;]+")


def redact(line: str) -> str:
    lower = line.lower()  # a plain substring test first: the regex is ~20x slower than this
    if "cs_" not in line and "bearer" not in lower and "basic" not in lower:
        return line
    return _SECRETS.sub(lambda m: f"{m.group(1)} [redacted]" if m.group(1) else "[redacted]", line)


_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "color_message",  # uvicorn's ANSI-coloured copy of msg
}
_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """RFC 3339 UTC with milliseconds; the seconds part is formatted once per second."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id"?, ...fields, "exc"?}`` as one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.current.get()
        if rid is not None:
            out["request_id"] = rid
        for name, value in vars(record).items():
            if name not in _RESERVED and not name.startswith("_"):
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(out, default=str).decode())


class _Line:
    """What crosses the queue: a finished line and its level (a LogRecord costs ~8 us)."""

    __slots__ = ("levelno", "msg")

    def __init__(self, levelno: int, msg: str) -> None:
        self.levelno, self.msg = levelno, msg


class _Prepared(logging.handlers.QueueHandler):
    def prepare(self, record: logging.LogRecord) -> Any:
        # Format on the caller's side (the request id lives in its context), ship a plain line.
        return _Line(record.levelno, self.format(record))


class _Writer(logging.StreamHandler):
    """The background thread's end: write each line as it is."""

    def handle(self, record: Any) -> bool:
        try:
            self.stream.write(record.msg + "\n")
            self.stream.flush()
        except Exception:  # a closed or full stderr must not kill the writer thread
            return False
        return True


_listener: logging.handlers.QueueListener | None = None


def configure(level: str = "info") -> None:
    """Send every log record to stderr as JSON through a background writer thread."""
    global _listener
    if _listener is not None:
        return
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = _Prepared(q)
    handler.setFormatter(JsonFormatter())
    writer = _Writer(sys.stderr)
    _listener = logging.handlers.QueueListener(q, writer)
    _listener.start()
    atexit.register(_listener.stop)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
