"""Conditional GETs tried on the event loop from memory first, in the threadpool when they
must read the store.

A sync handler costs a hop to the threadpool and back, even when everything it needs is in
the worker's memory: a 304 whose version and slug the version cache holds
(``api.changes.cache``), or a body the response cache holds for a revalidating client. At 64
connections that hop made a 304 cost 0.78-0.94x of ``/healthz`` (an ``async`` route); on the
loop, 0.93-1.11x.

``@memory_first`` runs a conditional GET's handler on the loop with a stand-in session that
has the real session's ``info`` (where the version cache is found) and nothing else: the
first attribute the handler asks of it beyond that, which would be a query, raises
``NeedsStore``. Then, and when the answer is not a complete in-memory one (a streamed
download), the attempt is dropped and the handler runs again in the threadpool with the real
session, as before. A GET handler has no effects on the store, and the attempt stops before
any it could have on the request: ``require_store()`` guards the one (a download taking the
session over). A plain GET goes to the threadpool at once.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

_FROM_MEMORY: contextvars.ContextVar[bool] = contextvars.ContextVar("from_memory", default=False)


class NeedsStore(Exception):
    """The memory-only attempt reached for the store."""


class _MemoryOnlySession:
    """The request's session as far as memory goes: its ``info``, and nothing else."""

    def __init__(self, session: Any) -> None:
        self.info = session.info

    def __getattr__(self, name: str) -> Any:
        raise NeedsStore(name)


def require_store() -> None:
    """Called before anything a memory-only attempt must not do (it would be done twice)."""
    if _FROM_MEMORY.get():
        raise NeedsStore("a streamed answer")


def memory_first(handler: Callable[..., Response]) -> Callable[..., Any]:
    """An ``async`` endpoint for a sync GET ``handler`` that takes its session as
    ``session``: answered on the loop when memory suffices, else in the threadpool."""

    @functools.wraps(handler)
    async def endpoint(**kwargs: Any) -> Response:
        if _conditional(kwargs.get("request")):
            answer = _from_memory(handler, kwargs)
            if answer is not None:
                return answer
        return await run_in_threadpool(functools.partial(handler, **kwargs))

    return endpoint


def _conditional(request: Any) -> bool:
    """Only a conditional GET is tried from memory: a revalidation is what a worker can
    mostly answer without the store (a 304), and a plain GET goes to the threadpool at once,
    as it did before (an attempt that ends at the store is work done twice)."""
    headers = getattr(request, "headers", None)
    return headers is not None and ("if-none-match" in headers or "if-modified-since" in headers)


def _from_memory(handler: Callable[..., Response], kwargs: dict[str, Any]) -> Response | None:
    token = _FROM_MEMORY.set(True)
    try:
        answer = handler(**{**kwargs, "session": _MemoryOnlySession(kwargs["session"])})
    except NeedsStore:
        return None
    finally:
        _FROM_MEMORY.reset(token)
    if isinstance(answer, StreamingResponse):  # its body would read the store later
        return None
    return answer
