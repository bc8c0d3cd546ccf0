"""Field types shared by every domain's schemas."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator

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


def _web_url(url: str) -> str:
    if not re.match(r"^https?://[^\s/]+", url, re.IGNORECASE):
        raise ValueError("must be an http:// or https:// address")
    return url


# A link shown on the site: only http(s), never javascript: or data:.
WebUrl = Annotated[str, StringConstraints(max_length=500), AfterValidator(_web_url)]


def _tag(tag: str) -> str:
    if not tag.strip() or ";" in tag:
        raise ValueError("a tag is non-empty text without ';' (CSV joins tags with ';')")
    return tag


Tag = Annotated[str, StringConstraints(max_length=100), AfterValidator(_tag)]


def _no_nul(value: Any) -> bool:
    """Whether no string in ``value`` (nested lists and objects included) holds a NUL."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return False
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
    return True


class Body(BaseModel):
    """A request body's model. No text field may hold a NUL character: PostgreSQL cannot
    store one and SQLite would, so it is a 422 on both stores before any write."""

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if not _no_nul(value):
            raise ValueError("must not contain a NUL character")
        return value


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
