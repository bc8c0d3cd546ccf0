from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

DEPARTMENT_COLUMNS = ("slug", "name", "cabinet", "description", "url", "updated_at")


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    cabinet: str | None = Field(default=None, max_length=200)
    description: str | None = None
    url: str | None = Field(default=None, max_length=500)


class DepartmentOut(BaseModel):
    slug: str
    name: str
    cabinet: str | None
    description: str | None
    url: str | None
    updated_at: dt.datetime


class DepartmentList(BaseModel):
    data: list[DepartmentOut]
    next: str | None
