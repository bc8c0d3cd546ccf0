"""Ingest shapes: the receipt models and the documented request body (JSON array or CSV)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

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
    """A stored batch's receipt (``department`` null for an admin key's batch)."""

    batch: int
    received: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    department: str | None
    created_at: dt.datetime


RECEIPT_EXAMPLE: dict[str, Any] = {
    "batch": 42,
    "received": 3,
    "created": 2,
    "updated": 1,
    "unchanged": 0,
    "deleted": 0,
    "department": "311",
    "created_at": "2026-05-16T04:00:12.345678Z",
}


class BatchList(BaseModel):
    """A page of receipts, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": [RECEIPT_EXAMPLE],
                    "next": "https://data.city.gov/v1/ingest/batches?limit=1&cursor=WzQyXQ",
                }
            ]
        }
    )

    data: list[BatchReceipt]
    next: str | None


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
        "application/json": {
            "schema": {"type": "array", "items": RECORD_SCHEMA},
            "example": [
                {
                    "metric": "311-call-center-performance",
                    "date": "2026-05-15",
                    "numerator": 741,
                    "denominator": 788,
                },
                {"metric": "311-call-center-performance", "date": "2026-05-14", "deleted": True},
            ],
        },
        "text/csv": {
            "schema": {"type": "string"},
            "example": "metric,date,value,numerator,denominator\r\n"
            "311-call-center-performance,2026-05-15,,741,788\r\n",
        },
    },
}
