"""The four seed analyses, written for this project."""

from __future__ import annotations

import datetime as dt
from typing import Any

ANALYSES: list[dict[str, Any]] = [
    {
        "slug": "data-analytics-overview",
        "title": "How the city uses data: an overview of the analytics team",
        "summary": "What the analytics team does, how CityScore fits in, and where to find data.",
        "published_on": dt.date(2024, 1, 15),
        "departments": [],
        "tags": ["overview", "cityscore", "open-data"],
        "metrics": [],
        "body_markdown": """## Why a city analytics team

City departments already collect a great deal of operational data: calls answered,
potholes filled, ambulances dispatched. The analytics team's job is to turn those records into
**shared numbers** that managers, the Mayor's office and residents can read the same way.

## What we publish

- **CityScore**, one number for the health of city services. A score of 1 means a service
  is exactly on target; above 1 beats it, below 1 misses it.
- **Department scorecards**, the same scores grouped by department.
- **Daily values** for every metric, downloadable as CSV or JSON.

## How to use this API

Every collection is available as JSON or as a CSV download. Start with `/v1/metrics` to see
the catalogue, then `/v1/cityscore` for today's scores.
""",
    },
    {
        "slug": "continued-development-of-cityscore",
        "title": "Continued development of CityScore",
        "summary": "How the score is computed, what changed since launch, and what comes next.",
        "published_on": dt.date(2024, 6, 3),
        "departments": [],
        "tags": ["cityscore", "methodology"],
        "metrics": ["311-call-center-performance", "bfd-incidents"],
        "body_markdown": """## The method in one paragraph

Each metric is compared with a *reference*: either a target set by the department or the
metric's own history over the same days in previous years. The ratio of the two is the
metric's score; CityScore is the plain average of the metric scores.

## Four time windows

Scores are published for the previous day, the last complete week, the last complete month
and the last three complete months. Short windows show what happened yesterday; long ones
show whether a change is lasting.

## What changed

- Ratio metrics are pooled over the window (total on-time cases over total cases) instead of
  averaging daily percentages, so quiet days no longer count as much as busy ones.
- Trend metrics such as incidents use a baseline pooled over up to ten previous years.

## Next steps

We are adding more metrics from departments that do not yet report daily.
""",
    },
    {
        "slug": "ems-ambulance-allocation",
        "title": "EMS ambulance allocation and response times",
        "summary": "Using response-time data to decide where ambulances wait between calls.",
        "published_on": dt.date(2024, 9, 10),
        "departments": ["ems"],
        "tags": ["public-safety", "operations-research"],
        "metrics": ["ems-response-time"],
        "body_markdown": """## The question

Priority 1 calls need an ambulance fast. The median response time is scored against a
target of six minutes; a lower median is better.

## What the data showed

Response times were longest where call volume had grown faster than the number of units
posted nearby, and in the late afternoon when traffic is heaviest.

## What changed

EMS moved two units to posts closer to the busiest neighbourhoods during peak hours. The
*EMS RESPONSE TIME* metric on this site shows the daily median before and after the change.
""",
    },
    {
        "slug": "311-call-center-improvements",
        "title": "311 call center improvements",
        "summary": "Staffing to the hour of the day raised the share of calls answered quickly.",
        "published_on": dt.date(2025, 2, 20),
        "departments": ["311"],
        "tags": ["311", "customer-service"],
        "metrics": ["311-call-center-performance"],
        "body_markdown": """## The standard

311 aims to answer 95% of calls with a live agent within 30 seconds.

## What we found

Calls arrive in predictable waves: Monday mornings, and the day after a storm. Agents'
shifts did not follow those waves, so the share answered quickly dipped at the same hours
every week.

## What changed

Shifts now follow forecast call volume by hour, and a callback option replaces waiting in
the queue at peak times. The *311 CALL CENTER PERFORMANCE* metric pools answered-in-time
calls over all calls, so busy days weigh as much as they should.
""",
    },
]
