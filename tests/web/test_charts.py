"""SVG charts: pure functions, so plain table tests (no store, no server)."""

from __future__ import annotations

import itertools
from xml.etree import ElementTree as ET

import pytest

from api.web import charts

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("low", "high", "first", "last"),
    [(0, 1, 0, 1), (0.93, 0.99, 0.92, 1.0), (0, 7.3, 0, 8), (0, 0, 0, 1), (-2, 3, -2, 4)],
)
def test_ticks_cover_the_range_with_round_steps(
    low: float, high: float, first: float, last: float
) -> None:
    ticks = charts.nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high
    assert ticks[0] == pytest.approx(first) and ticks[-1] == pytest.approx(last)
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1


def test_value_axis_starts_at_zero_only_near_zero() -> None:
    assert charts.value_ticks([3.0, 9.0])[0] == 0
    assert charts.value_ticks([0.94, 0.97, 0.95])[0] > 0.5  # zoomed on a share near target


def test_line_chart_is_an_accessible_image_with_text_labels() -> None:
    svg = charts.line_chart(
        ident="c",
        title="Calls & answers",
        desc="Weekly share",
        x_labels=["w1", "w2", "w3", "w4", "w5"],
        lines=[charts.Line("share", [0.9, None, 0.95, 0.97, None])],
        target=[0.95] * 5,
        y_label="share",
        x_label="week",
    )
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c-title c-desc"
    assert root.findtext(f"{SVG}title") == "Calls & answers"
    assert root.findtext(f"{SVG}desc") == "Weekly share"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "share" in texts and "week" in texts and "w1" in texts
    assert "target 0.95" in texts
    # the gap after w1 breaks the line: a lone point is a dot, the rest one polyline
    assert len(root.findall(f".//{SVG}circle")) == 1
    assert len([p for p in root.iter(f"{SVG}polyline") if "line" in (p.get("class") or "")]) == 1


def test_several_series_get_a_legend_and_no_target_means_no_target_line() -> None:
    svg = charts.line_chart(
        ident="s",
        title="t",
        desc="d",
        x_labels=["a", "b"],
        lines=[charts.Line("week", [1, 2], "s1"), charts.Line("month", [2, 1], "s2")],
    )
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "week" in texts and "month" in texts
    assert not [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "target"]


def test_sparkline_reads_out_every_week() -> None:
    svg = charts.trend_sparkline("x", "Potholes", [("2026-05-04", 0.98), ("2026-05-11", None)])
    root = ET.fromstring(svg)
    assert root.findtext(f"{SVG}title") == (
        "Potholes: week scores, 2 weeks from 2026-05-04 to 2026-05-11"
    )
    assert root.findtext(f"{SVG}desc") == (
        "Target 1 (dashed). week of 2026-05-04: 0.98; week of 2026-05-11: no score."
    )
    assert root.find(f"{SVG}line") is not None  # the target


@pytest.mark.parametrize(
    ("value", "text"), [(0, "0"), (0.95, "0.95"), (1.0, "1"), (12.34, "12.3"), (12345, "12,345")]
)
def test_labels_drop_trailing_zeros(value: float, text: str) -> None:
    assert charts.fmt(value) == text
