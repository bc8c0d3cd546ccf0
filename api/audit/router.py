"""``GET /v1/audit``: every write, newest first, for the analytics team."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.audit import service
from api.audit.schemas import AUDIT_COLUMNS, AuditPage
from api.deps import AdminKey, SessionDep, SettingsDep
from api.errors import BadRequest, NotFound
from api.http.docs import READ_ERRORS, WRITE_ERRORS
from api.http.paging import (
    decode_cursor,
    encode_cursor,
    parse_limit,
    query_fingerprint,
)
from api.http.params import CursorParam, LimitParam
from api.http.respond import json_response

router = APIRouter(prefix="/v1", tags=["audit"])

Limit = LimitParam
Cursor = CursorParam


@router.get(
    "/audit",
    response_model=AuditPage,
    operation_id="listAudit",
    responses={
        400: READ_ERRORS[400],
        404: READ_ERRORS[404],
        401: WRITE_ERRORS[401],
        403: WRITE_ERRORS[403],
        429: READ_ERRORS[429],
        503: READ_ERRORS[503],
    },
)
def list_audit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _key: AdminKey,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Response:
    """Every write, newest first (admin key): ingest batches, PUT/DELETE of departments,
    metrics and analyses, API keys created and revoked. JSON only; never cached."""
    if request.scope.get("state", {}).get("csv_suffix"):
        raise NotFound("The audit log has no CSV form; drop the .csv suffix.")
    size = parse_limit(limit)
    fingerprint = query_fingerprint(request)
    before = None
    if cursor is not None:
        (before,) = decode_cursor(cursor, fingerprint, 1)
        if not isinstance(before, int) or isinstance(before, bool):
            raise BadRequest("cursor is malformed.")
    rows = service.page(session, before_id=before, limit=size + 1)
    headers = {"Cache-Control": "no-store"}
    next_url = None
    if len(rows) > size:
        rows = rows[:size]
        url = request.url.include_query_params(cursor=encode_cursor([rows[-1].id], fingerprint))
        base = settings.public_base_url.rstrip("/")
        next_url = f"{base}{url.path}?{url.query}" if base else str(url)
        headers["Link"] = f'<{next_url}>; rel="next"'
    data = [{c: getattr(r, c) for c in AUDIT_COLUMNS} for r in rows]
    return json_response({"data": data, "next": next_url}, headers=headers)
