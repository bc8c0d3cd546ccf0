from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from api.schemas import page_example


class AuditEntryOut(BaseModel):
    at: dt.datetime = Field(description="When the write was committed (RFC 3339 UTC)")
    key_id: int | None = Field(
        description="Id of the API key that wrote (`cityscore keys list`); null from the CLI"
    )
    department: str | None = Field(
        description="Slug of the department the write concerns; null when it concerns none"
    )
    action: str = Field(
        description="ingest, department.put, metric.put, analysis.put, analysis.delete, "
        "key.create or key.revoke"
    )
    target: str = Field(description="What was written: a batch id, a slug or a key id")
    detail: dict[str, Any] = Field(
        description="Action-specific facts (counts, created or replaced, request_id); "
        "never a key or a body"
    )


AUDIT_COLUMNS = tuple(AuditEntryOut.model_fields)  # CSV header and row order


class AuditPage(BaseModel):
    model_config = page_example(
        "/v1/audit",
        {
            "at": "2026-05-16T10:04:05.123456Z",
            "key_id": 3,
            "department": "311",
            "action": "ingest",
            "target": "42",
            "detail": {"received": 2, "created": 2, "request_id": "8f2c"},
        },
    )

    data: list[AuditEntryOut]
    next: str | None
