"""Security headers on every response: no sniffing, no referrer leaks, a strict CSP, no framing.

The CSP allows only the server's own scripts, styles and images (no inline code anywhere: the
Swagger UI and ReDoc start-up scripts are static files too). Framing is refused everywhere
except on the routes listed in ``frameable`` (the embeddable CityScore widget).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# 'self' for everything the pages load; data: images for the SVG icons in the docs bundles;
# blob: workers for ReDoc's search index.
CSP_BASE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'"
)
CSP = CSP_BASE + "; frame-ancestors 'none'"
CSP_FRAMEABLE = CSP_BASE + "; frame-ancestors *"
REFERRER_POLICY = "strict-origin-when-cross-origin"


def csp(*, style_nonce: str) -> str:
    """The site's CSP with one nonce allowed for style elements (ReDoc's styled-components
    inject them at run time); scripts stay 'self' only."""
    return CSP.replace("style-src 'self'", f"style-src 'self' 'nonce-{style_nonce}'")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, frameable: Iterable[str] = ()):
        self.app = app
        self.frameable = frozenset(frameable)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        frameable = scope["path"] in self.frameable

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = REFERRER_POLICY
                if "content-security-policy" not in headers:  # a route's own (see csp())
                    headers["Content-Security-Policy"] = CSP_FRAMEABLE if frameable else CSP
                if not frameable:
                    headers["X-Frame-Options"] = "DENY"
            await send(message)

        await self.app(scope, receive, send_with_headers)
