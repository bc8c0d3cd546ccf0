from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Slug

ANALYSIS_COLUMNS = (
    "slug",
    "title",
    "summary",
    "body_markdown",
    "body_html",
    "published_on",
    "departments",
    "tags",
    "metrics",
    "updated_at",
)


class AnalysisIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    summary: str | None = None
    body_markdown: str = Field(max_length=1_000_000)
    published_on: dt.date
    departments: list[Slug] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    metrics: list[Slug] = Field(default_factory=list)


class AnalysisOut(BaseModel):
    slug: str
    title: str
    summary: str | None
    body_markdown: str
    body_html: str
    published_on: dt.date
    departments: list[str]
    tags: list[str]
    metrics: list[str]
    updated_at: dt.datetime


class AnalysisList(BaseModel):
    data: list[AnalysisOut]
    next: str | None
