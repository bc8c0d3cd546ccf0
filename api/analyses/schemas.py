from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from api.schemas import Body, Slug, Tag, example, page_example


class AnalysisIn(Body):
    model_config = example(
        {
            "title": "311 Call Center Improvements",
            "summary": "How staffing changes moved the call center score.",
            "body_markdown": "## What changed\n\nMore agents at the Monday peak.",
            "published_on": "2026-05-01",
            "departments": ["311"],
            "tags": ["cityscore", "311"],
            "metrics": ["311-call-center-performance"],
        },
        extra="forbid",
    )

    title: str = Field(min_length=1, max_length=300)
    summary: str | None = None
    body_markdown: str = Field(max_length=1_000_000)
    published_on: dt.date
    departments: list[Slug] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)
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


ANALYSIS_COLUMNS = tuple(AnalysisOut.model_fields)  # CSV header and row order


class AnalysisList(BaseModel):
    model_config = page_example(
        "/v1/analyses",
        {
            "slug": "311-call-center-improvements",
            "title": "311 Call Center Improvements",
            "summary": "How staffing changes moved the call center score.",
            "body_markdown": "## What changed\n\nMore agents at the Monday peak.",
            "body_html": "<h2>What changed</h2>\n<p>More agents at the Monday peak.</p>\n",
            "published_on": "2026-05-01",
            "departments": ["311"],
            "tags": ["cityscore", "311"],
            "metrics": ["311-call-center-performance"],
            "updated_at": "2026-05-16T04:00:12.345678Z",
        },
    )

    data: list[AnalysisOut]
    next: str | None
