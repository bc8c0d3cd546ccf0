"""Running something for as long as the app runs: its lifespan, extended."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI


def extend_lifespan(app: FastAPI, resource: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
    """Enter ``resource()`` when the app starts and leave it when the app stops, around
    whatever the lifespan already runs (the resource outlives the rest)."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(target: Any) -> AsyncIterator[Any]:
        async with resource(), inner(target) as state:
            yield state

    app.router.lifespan_context = lifespan
