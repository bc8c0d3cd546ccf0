"""Field types shared by every domain's schemas."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
SLUG_RE = re.compile(SLUG_PATTERN)

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=100)]


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError("must be a finite number")
    return x


FiniteFloat = Annotated[float, AfterValidator(_finite)]
