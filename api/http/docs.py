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


def problem_response_doc(description: str) -> dict[str, Any]:
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
    400: problem_response_doc("Malformed query: dates, limit, cursor, interval"),
    404: problem_response_doc("No such resource"),
    429: problem_response_doc("Rate limit exceeded (see Retry-After)"),
    503: problem_response_doc("The data store is unavailable"),
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem_response_doc("Missing, invalid, revoked or expired API key"),
    403: problem_response_doc("The key may not do this"),
    409: problem_response_doc("Conflicts with the current state"),
    422: problem_response_doc("Invalid body; `errors` lists every problem"),
    429: problem_response_doc("Rate limit exceeded (see Retry-After)"),
    503: problem_response_doc("The data store is unavailable"),
}
JSON_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **WRITE_ERRORS,
    415: problem_response_doc("The body is not application/json"),
}
CSV_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON; CSV with a `.csv` suffix or `Accept: text/csv` (every row, streamed)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def tidy_parameters(doc: dict[str, Any]) -> None:
    """An optional parameter is documented by its type alone: ``anyOf [T, null]`` becomes T
    (leaving a parameter out is how a client sends "no value"), so generated clients and /docs
    show `string`/`date` instead of a union."""
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            for param in operation.get("parameters", []):
                schema = param.get("schema", {})
                options = schema.get("anyOf")
                if param.get("required") or not options:
                    continue
                kept = [o for o in options if o.get("type") != "null"]
                if len(kept) == 1 and len(kept) < len(options):
                    del schema["anyOf"]
                    schema.update(kept[0])
