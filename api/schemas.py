"""Field types shared by every domain's schemas."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, StringConstraints

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
SLUG_RE = re.compile(SLUG_PATTERN)

# Descriptions of the slug path parameters (OpenAPI).
DEPARTMENT_SLUG = "The department's slug, e.g. `311`"
METRIC_SLUG = "The metric's slug, e.g. `pothole-on-time`"
ANALYSIS_SLUG = "The analysis's slug, e.g. `continued-development-of-cityscore`"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=100)]


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError("must be a finite number")
    return x


FiniteFloat = Annotated[float, AfterValidator(_finite)]


def example(value: dict[str, Any], **config: Any) -> ConfigDict:
    """A model config whose JSON Schema carries ``value`` as its example (shown in /docs)."""
    return ConfigDict(json_schema_extra={"examples": [value]}, **config)  # type: ignore[typeddict-item]


def page_example(path: str, *rows: dict[str, Any]) -> ConfigDict:
    """The example of a collection page ``{data, next}`` at ``path``."""
    cursor = "eyJrIjpbIjIwMjYtMDUtMTUiXSwicSI6IjNmMGMifQ"
    return example(
        {
            "data": list(rows),
            "next": f"https://data.city.gov{path}?limit={len(rows)}&cursor={cursor}",
        }
    )
