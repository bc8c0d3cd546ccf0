"""OpenAPI fragments shared by every router: the problem+json body and the CSV form."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class FieldError(BaseModel):
    row: int | None
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; ``message`` repeats ``detail`` for Socrata-style clients."""

    type: str
    title: str
    status: int
    detail: str
    message: str
    errors: list[FieldError] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def component_schemas() -> dict[str, Any]:
    """Problem and FieldError as OpenAPI components (referenced by every error response)."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {"Problem": schema, **defs}


READ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed query: dates, limit, cursor, interval"),
    404: _problem("No such resource"),
    429: _problem("Rate limit exceeded (see Retry-After)"),
    503: _problem("The data store is unavailable"),
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem("Missing, invalid or revoked API key"),
    403: _problem("The key may not do this"),
    409: _problem("Conflicts with the current state"),
    422: _problem("Invalid body; `errors` lists every problem"),
    429: _problem("Rate limit exceeded (see Retry-After)"),
    503: _problem("The data store is unavailable"),
}
CSV_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON; CSV with a `.csv` suffix or `Accept: text/csv` (every row, streamed)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
