"""``/about`` — how CityScore is computed, in plain words."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.web import render, words

router = APIRouter()


@router.get("/about")
def about(request: Request) -> Response:
    return render.page(
        request, render.STATIC_VERSION, "about.html", lambda: {"aggregates": words.AGGREGATE}
    )
