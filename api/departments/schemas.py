from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from api.schemas import Body, WebUrl, example, page_example


class DepartmentIn(Body):
    model_config = example(
        {
            "name": "311 Customer Service",
            "cabinet": "Operations",
            "description": "BOS:311 takes service requests from residents.",
            "url": "https://www.boston.gov/departments/311",
        },
        extra="forbid",
    )

    name: str = Field(min_length=1, max_length=200)
    cabinet: str | None = Field(default=None, max_length=200)
    description: str | None = None
    url: WebUrl | None = None


class DepartmentOut(BaseModel):
    slug: str
    name: str
    cabinet: str | None
    description: str | None
    url: str | None
    updated_at: dt.datetime


DEPARTMENT_COLUMNS = tuple(DepartmentOut.model_fields)  # CSV header and row order


class DepartmentList(BaseModel):
    model_config = page_example(
        "/v1/departments",
        {
            "slug": "311",
            "name": "311 Customer Service",
            "cabinet": "Operations",
            "description": "BOS:311 takes service requests from residents.",
            "url": "https://www.boston.gov/departments/311",
            "updated_at": "2026-05-16T04:00:12.345678Z",
        },
    )

    data: list[DepartmentOut]
    next: str | None
