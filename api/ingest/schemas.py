"""Ingest shapes: the receipt models and the documented request body (JSON array or CSV)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

RECORD_FIELDS = ("metric", "date", "value", "numerator", "denominator", "deleted")
CSV_REQUIRED = ("metric", "date", "value", "numerator", "denominator")


class IngestReceipt(BaseModel):
    """What a batch did. ``batch`` is null and ``dry_run`` true when nothing was written."""

    batch: int | None
    received: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    dry_run: bool


class BatchReceipt(BaseModel):
    batch: int
    received: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    department: str | None
    created_at: dt.datetime


_NUMBER = {"type": "number", "minimum": 0}
_BASE = {"metric": {"type": "string"}, "date": {"type": "string", "format": "date"}}

RECORD_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "title": "Value",
            "type": "object",
            "properties": {**_BASE, "value": _NUMBER},
            "required": ["metric", "date", "value"],
            "additionalProperties": False,
        },
        {
            "title": "Ratio",
            "type": "object",
            "properties": {
                **_BASE,
                "numerator": _NUMBER,
                "denominator": {"type": "number", "exclusiveMinimum": 0},
            },
            "required": ["metric", "date", "numerator", "denominator"],
            "additionalProperties": False,
        },
        {
            "title": "Deletion",
            "type": "object",
            "properties": {**_BASE, "deleted": {"type": "boolean", "const": True}},
            "required": ["metric", "date", "deleted"],
            "additionalProperties": False,
        },
    ]
}

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": (
        "A JSON array of records (also when no Content-Type is sent), or `text/csv` with the "
        "header `metric,date,value,numerator,denominator` (any order; optional `deleted` "
        "column; empty cell = absent; a UTF-8 BOM is stripped)."
    ),
    "content": {
        "application/json": {"schema": {"type": "array", "items": RECORD_SCHEMA}},
        "text/csv": {"schema": {"type": "string"}},
    },
}
