"""Answers as known at an instant (``as_known_at``): values and definitions as they stood.

PLACEHOLDER (being written on main): ``document`` returns today's document for now.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from api.cityscore import publish


def document(session: Session, as_of: dt.date, instant: dt.datetime | None) -> dict[str, Any]:
    """``/v1/cityscore``'s document for ``as_of`` as known at ``instant`` (None: now)."""
    return publish.cityscore_document(session, as_of)
