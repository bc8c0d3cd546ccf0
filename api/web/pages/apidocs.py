"""``/docs`` (Swagger UI) and ``/redoc`` from the bundles the ``fastapi-offline`` package ships.

Nothing comes from a CDN: the bundles are read from the installed package and served under
``/static/vendor/``; their start-up scripts are static files (the CSP allows no inline code).
ReDoc's bundle draws a logo from its vendor's CDN; the served copy points it at our own file.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, Request, Response

from api.errors import NotFound
from api.http import respond
from api.http.caching import Version
from api.http.security import csp
from api.web import render

router = APIRouter()

VENDOR_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
}
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
LOCAL_LOGO = b"/static/redoc-logo.svg"
# The bundle's style loader adds its CSS before Redoc.init() could hand it the nonce; let it
# read the nonce that /static/redoc-nonce.js publishes first.
STYLE_LOADER = b'var t=r.nc;t&&e.setAttribute("nonce",t)'
STYLE_LOADER_NONCE = b'var t=r.nc||self.REDOC_STYLE_NONCE;t&&e.setAttribute("nonce",t)'


@lru_cache(maxsize=len(VENDOR_FILES))
def vendor_file(name: str) -> tuple[bytes, str]:
    """The file's bytes (ReDoc's with the local logo) and a content hash for its ETag."""
    body = resources.files("fastapi_offline").joinpath("static", name).read_bytes()
    if name == "redoc.standalone.js":
        body = body.replace(REDOC_CDN_LOGO, LOCAL_LOGO).replace(STYLE_LOADER, STYLE_LOADER_NONCE)
    return body, hashlib.sha256(body).hexdigest()[:32]


@router.get("/static/vendor/{name}")
def vendor(request: Request, name: str) -> Response:
    if name not in VENDOR_FILES:
        raise NotFound(f"No file '{name}'.")
    body, digest = vendor_file(name)
    return respond.rendered(request, Version(digest, None), VENDOR_FILES[name], lambda: body)


@router.get("/docs")
def swagger_ui(request: Request) -> Response:
    return render.page(request, render.STATIC_VERSION, "swagger.html", lambda: {})


@router.get("/redoc")
def redoc(request: Request) -> Response:
    """ReDoc injects its styles as <style> elements: they carry a fresh nonce, which the
    page's CSP allows (so the page is never cached: each answer has its own nonce)."""
    nonce = secrets.token_urlsafe(16)
    body = render.render(request, "redoc.html", {"nonce": nonce})
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": csp(style_nonce=nonce)}
    return Response(body, media_type=render.HTML_MEDIA_TYPE, headers=headers)
