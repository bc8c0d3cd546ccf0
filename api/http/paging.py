"""Limits and opaque keyset cursors, bound to the query they came from."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import orjson
from starlette.requests import Request

from api.errors import BadRequest

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
PAGING_PARAMS = ("limit", "cursor", "bom")


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}.") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be from 1 to {MAX_LIMIT}; got {limit}.")
    return limit


def query_fingerprint(request: Request) -> str:
    """A short hash of the path and the filters (not the paging), binding cursors to a query."""
    items = sorted((k, v) for k, v in request.query_params.multi_items() if k not in PAGING_PARAMS)
    raw = request.url.path + "?" + "&".join(f"{k}={v}" for k, v in items)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode_cursor(key: list[Any], fingerprint: str) -> str:
    raw = orjson.dumps({"k": key, "q": fingerprint})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(raw: str, fingerprint: str, width: int) -> list[Any]:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadRequest("cursor is malformed.") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("k"), list):
        raise BadRequest("cursor is malformed.")
    if payload.get("q") != fingerprint:
        raise BadRequest("cursor belongs to a different query.")
    key = payload["k"]
    if len(key) != width or not all(isinstance(v, str | int | float) for v in key):
        raise BadRequest("cursor is malformed.")
    if any(isinstance(v, str) and "\x00" in v for v in key):  # no key holds one
        raise BadRequest("cursor is malformed.")
    return key
