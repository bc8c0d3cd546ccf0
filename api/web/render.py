"""Jinja2 environment and the one way a page answers: cached like the API (ETag, 304)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import Response

from api.http import respond
from api.http.caching import Version

HERE = Path(__file__).resolve().parent
HTML_MEDIA_TYPE = "text/html; charset=utf-8"


def _revision() -> str:
    """A hash of the templates and static files: a new release never matches an old ETag."""
    digest = hashlib.sha256()
    for path in sorted([*HERE.glob("templates/*"), *HERE.glob("static/*")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


SITE_REVISION = _revision()


def score(value: float | None) -> str:
    """A score for display: three decimals (the data keeps full precision)."""
    if value is None or not math.isfinite(value):
        return "—"
    text = f"{value:.3f}"
    digits = 3
    while value < 1 and text.startswith("1.") and digits < 9:  # never round up to "on target"
        digits += 1
        text = f"{value:.{digits}f}"
    return text


def number(value: float | None, digits: int = 3) -> str:
    """A measured value for display: thousands separated, at most ``digits`` decimals."""
    if value is None or not math.isfinite(value):
        return "—"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:,.{digits}f}".rstrip("0").rstrip(".")


def query(params: Mapping[str, Any]) -> str:
    """``?a=1&b=2`` from the non-empty parameters ('' when none)."""
    items = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(items) if items else ""


STATUS_TEXT = {
    "above_target": ("▲", "Above target"),
    "below_target": ("▼", "Below target"),
    "not_scored": ("◆", "Not scored"),
    "no_data": ("○", "No data"),
}

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["score"] = score
env.filters["number"] = number
env.globals["query"] = query
env.globals["STATUS_TEXT"] = STATUS_TEXT
env.globals["SITE_REVISION"] = SITE_REVISION

NAV = (
    ("/", "Scoreboard"),
    ("/departments", "Departments"),
    ("/metrics", "Metrics"),
    ("/reports/weekly", "Weekly report"),
    ("/analyses", "Analyses"),
    ("/about", "About"),
    ("/docs", "API"),
)


def _section(path: str) -> str:
    """The nav entry a path belongs to (``/metrics/x`` is under ``/metrics``)."""
    if path == "/":
        return "/"
    return next((href for href, _ in NAV[1:] if path.startswith(href)), "")


def render(request: Request, template: str, context: Mapping[str, Any]) -> str:
    settings = request.app.state.settings
    base = {
        "city": settings.city_name,
        "nav": NAV,
        "section": _section(request.url.path),
        "path": request.url.path,
    }
    return env.get_template(template).render({**base, **context})


def page(
    request: Request,
    version: Version,
    template: str,
    context: Callable[[], Mapping[str, Any]],
    *,
    extra: str = "",
    status_code: int = 200,
) -> Response:
    """Render ``template`` with ``context()`` unless the client's copy is current (304)."""
    return respond.rendered(
        request,
        version,
        HTML_MEDIA_TYPE,
        lambda: render(request, template, context()),
        extra=f"{SITE_REVISION}|{extra}",
        status_code=status_code,
    )


STATIC_VERSION = Version(f"site:{SITE_REVISION}", None)
