"""The site's routes: one module per page kind, none of them in the OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter

from api.web.pages import about, analyses, apidocs, departments, embed, metrics, reports, scoreboard

router = APIRouter(include_in_schema=False)
for module in (scoreboard, departments, metrics, reports, analyses, about, embed, apidocs):
    router.include_router(module.router)

# The only route another site may put in a frame.
FRAMEABLE = ("/embed/cityscore",)
