"""JSON logs, one object a line, written off the event loop.

``configure()`` routes every logger (uvicorn's included) through a ``QueueHandler``: the event
loop only formats a small dict and enqueues it; a background thread does the blocking write
to stderr. uvicorn's own access log is switched off, because ``ObservabilityMiddleware`` writes
a richer line per request.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import logging.handlers
import queue
import re
import sys
from typing import Any

import orjson

from api.observability import request_id

ACCESS_LOGGER = "cityscore.access"
# Defence in depth: whatever a library or an exception message puts in a log line, an API key
# or a credential after an auth scheme never reaches the log.
_SECRETS = re.compile(r"\bcs_[A-Za-z0-9_-]{16,}|(?i:\b(bearer|basic)\s+)[^\s\"',;]+")


def redact(line: str) -> str:
    if "cs_" not in line and not _SCHEME.search(line):
        return line
    return _SECRETS.sub(lambda m: f"{m.group(1)} [redacted]" if m.group(1) else "[redacted]", line)


_SCHEME = re.compile(r"(?i)\b(bearer|basic)\s")
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "color_message",  # uvicorn's ANSI-coloured copy of msg
}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id"?, ...fields, "exc"?}`` as one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
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


class _Prepared(logging.handlers.QueueHandler):
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Format on the caller's side (the request id lives in its context), ship a plain line.
        line = self.format(record)
        return logging.makeLogRecord({"msg": line, "levelno": record.levelno})


_listener: logging.handlers.QueueListener | None = None


def configure(level: str = "info") -> None:
    """Send every log record to stderr as JSON through a background writer thread."""
    global _listener
    if _listener is not None:
        return
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = _Prepared(q)
    handler.setFormatter(JsonFormatter())
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(logging.Formatter("%(message)s"))
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
