"""``GET /internal/metrics``: Prometheus text format (``/metrics`` is the web catalogue page)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.observability import metrics

router = APIRouter(tags=["health"])


@router.get("/internal/metrics", include_in_schema=False)
def internal_metrics() -> Response:
    """Every Prometheus series of this process, or of every worker in multiprocess mode.

    A plain ``def``: the multiprocess scrape reads files, which must not block the loop."""
    body, content_type = metrics.scrape()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
