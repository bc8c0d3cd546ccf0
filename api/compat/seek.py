"""Offset paging without O(n^2): remember the key of the row just before each offset served.

Clients such as sodapy's ``get_all`` and CKAN's ``_links.next`` page with ``offset``. Counting
``offset`` rows on every page makes a full read quadratic; instead, after serving rows
``[offset, offset + n)`` we remember the unique key of the last row under ``offset + n``, and the
next page starts with an index seek past it. Entries are keyed by the query (without its
offset and limit) and the data version, so a change to the data never reuses an old key.
A miss (another process, an evicted entry, a client that jumps) just counts rows as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class SeekCache:
    """A bounded, thread-safe map ``(query, version, offset) -> key of the row before it``."""

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[str, str, int], tuple[Any, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, query: str, version: str, offset: int) -> tuple[Any, ...] | None:
        with self._lock:
            key = self._items.get((query, version, offset))
            if key is None:
                self.misses += 1
                return None
            self._items.move_to_end((query, version, offset))
            self.hits += 1
            return key

    def put(self, query: str, version: str, offset: int, key: tuple[Any, ...]) -> None:
        with self._lock:
            self._items[(query, version, offset)] = key
            self._items.move_to_end((query, version, offset))
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


def seek_cache(state: Any) -> SeekCache:
    """The app's cache (``app.state.seeks``), created on first use."""
    cache: SeekCache | None = getattr(state, "seeks", None)
    if cache is None:
        cache = SeekCache()
        state.seeks = cache
    return cache
