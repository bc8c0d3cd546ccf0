"""``GET /v1/audit``: every write, newest first, for the analytics team."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.audit import service
from api.audit.schemas import AuditPage
from api.deps import AdminKey, SessionDep, SettingsDep
from api.http.docs import READ_ERRORS, WRITE_ERRORS
from api.http.params import CursorParam, LimitParam
from api.http.respond import private_collection

router = APIRouter(prefix="/v1", tags=["audit"])


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
    limit: LimitParam = None,
    cursor: CursorParam = None,
) -> Response:
    """Every write, newest first (admin key): ingest batches, PUT/DELETE of departments,
    metrics and analyses, API keys created and revoked. JSON only; never cached."""
    return private_collection(request, service.listing(session), base_url=settings.public_base_url)
