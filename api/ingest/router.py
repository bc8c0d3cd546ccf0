"""Department ingest: post daily values, read a batch's receipt."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from api.audit import service as audit
from api.deps import DepartmentKey, SessionDep, SettingsDep
from api.errors import BadRequest, PayloadTooLarge
from api.http.docs import READ_ERRORS, WRITE_ERRORS, problem_response_doc
from api.http.params import CursorParam, LimitParam
from api.http.respond import json_response, private_collection
from api.ingest import receipts, service
from api.ingest.parse import media_type
from api.ingest.schemas import REQUEST_BODY, BatchList, BatchReceipt, IngestReceipt
from api.observability import metrics

router = APIRouter(prefix="/v1", tags=["ingest"])


INGEST_ERRORS: dict[int | str, dict[str, Any]] = {
    **WRITE_ERRORS,
    400: problem_response_doc("Malformed query or header (dry_run, Idempotency-Key)"),
    413: problem_response_doc("Body or record count above the limits"),
    415: problem_response_doc("Content-Type other than application/json or text/csv"),
}


async def read_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw body, refused with 415 for other media types and 413 above the byte limit.

    The limit is checked against Content-Length first and again while streaming, so an
    oversized body is never held in memory whole.
    """
    media_type(request.headers.get("content-type"))
    limit = settings.ingest_max_bytes
    too_large = PayloadTooLarge(f"The body is larger than the {limit}-byte limit per batch.")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise BadRequest("Content-Length must be a number of bytes.") from None
        if length > limit:
            raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/ingest/values",
    response_model=IngestReceipt,
    operation_id="ingestValues",
    responses=INGEST_ERRORS,
    openapi_extra={"requestBody": REQUEST_BODY},
)
def ingest_values(
    session: SessionDep,
    key: DepartmentKey,
    body: Annotated[bytes, Depends(read_body)],
    request: Request,
    settings: SettingsDep,
    dry_run: Annotated[
        bool, Query(description="Validate and count only; nothing is written.")
    ] = False,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=service.MAX_IDEMPOTENCY_KEY,
            description="A retry with the same key and body answers the first receipt again.",
        ),
    ] = None,
) -> Response:
    """Upsert daily values on (metric, date), all or nothing.

    Body: a JSON array of `{metric, date, value}`, `{metric, date, numerator, denominator}` or
    `{metric, date, deleted: true}` (no Content-Type means JSON), or `text/csv` with the header
    `metric,date,value,numerator,denominator` (optional `deleted` column). Any invalid record
    gives 422 listing every problem as `{row, field, message}` (row = 0-based record index);
    malformed JSON or CSV is also 422. A metric of another department makes the whole batch
    403. Replaying a batch changes nothing (everything `unchanged`). Old versions are kept as
    revisions and deletions as tombstones; affected scores are recomputed before the answer.
    """
    outcome = service.ingest(
        session,
        key,
        body,
        request.headers.get("content-type"),
        today=settings.today(),
        max_rows=settings.ingest_max_rows,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )
    batch = outcome.receipt["batch"]
    if batch is not None and not outcome.replayed:  # dry runs and replays write nothing
        audit.record(
            session,
            key=key,
            action="ingest",
            target=str(batch),
            department=audit.department_slug(session, key.department_id),
            detail={c: outcome.receipt[c] for c in audit.INGEST_COUNTS},
        )
    metrics.count_ingest(outcome.receipt, replayed=outcome.replayed)
    headers = {}
    if outcome.receipt["batch"] is not None:
        headers["Location"] = f"/v1/ingest/batches/{outcome.receipt['batch']}"
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(outcome.receipt, headers=headers)


@router.get(
    "/ingest/batches",
    response_model=BatchList,
    operation_id="listIngestBatches",
    responses={**READ_ERRORS, 401: WRITE_ERRORS[401]},
)
def list_ingest_batches(
    request: Request,
    session: SessionDep,
    key: DepartmentKey,
    settings: SettingsDep,
    limit: LimitParam = None,
    cursor: CursorParam = None,
) -> Response:
    """The key's department's batch receipts, newest first (every batch for an admin key),
    in the row shape of `GET /v1/ingest/batches/{batch_id}`. JSON only; never cached."""
    listing = receipts.listing(session, key)
    return private_collection(request, listing, base_url=settings.public_base_url)


@router.get(
    "/ingest/batches/{batch_id}",
    response_model=BatchReceipt,
    operation_id="getIngestBatch",
    responses={**READ_ERRORS, 401: WRITE_ERRORS[401]},
)
def get_ingest_batch(
    session: SessionDep,
    key: DepartmentKey,
    batch_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The receipt's `batch` number")],
) -> Response:
    """A batch's receipt, for a key of the same department or an admin key (else 404)."""
    return json_response(service.get_batch(session, key, batch_id))
