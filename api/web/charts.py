"""SVG charts rendered on the server: pure functions from numbers to markup, no I/O.

Every chart is an accessible image (``role="img"`` named by its ``<title>`` and ``<desc>``),
writes its axis labels as text, draws a labelled target line, and tells series apart by dash
pattern as well as colour. The page shows a data table with the same numbers beside it.
Styling comes from classes in the site's stylesheet (no inline styles: the CSP forbids them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

Number = float | None


@dataclass(frozen=True)
class Line:
    """One series: a name for the legend, one value per x position, and a CSS class."""

    name: str
    values: Sequence[Number]
    css: str = "s1"


def fmt(value: float, digits: int = 3) -> str:
    """A number for a label: up to ``digits`` significant decimals, no trailing zeros."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.{digits}f}" if abs(value) < 10 else f"{value:.1f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    tick = first
    while tick < high + step * 0.999:
        ticks.append(round(tick, 10))
        tick += step
    return ticks


def value_ticks(values: Sequence[float]) -> list[float]:
    """Ticks for a value axis: from 0 when the data sit near it (counts, shares), else zoomed
    in on the data so a trend around a target stays visible."""
    if not values:
        return [0.0, 0.5, 1.0]
    low, high = min(values), max(values)
    span = high - low or abs(high) * 0.1 or 1.0
    if low >= 0 and low < span:
        return nice_ticks(0.0, high + span * 0.05)
    return nice_ticks(low - span * 0.1, high + span * 0.1)


def _points(
    values: Sequence[Number], xs: Sequence[float], y: Callable[[float], float]
) -> list[list[str]]:
    """Runs of consecutive non-null points as 'x,y' strings (a gap breaks the line)."""
    runs: list[list[str]] = [[]]
    for x, v in zip(xs, values, strict=True):
        if v is None or not math.isfinite(v):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(f"{x:.1f},{y(v):.1f}")
    return [r for r in runs if r]


def _series_markup(line: Line, xs: Sequence[float], y: Callable[[float], float]) -> list[str]:
    out = []
    for run in _points(line.values, xs, y):
        if len(run) == 1:
            cx, cy = run[0].split(",")
            out.append(f'<circle class="dot {line.css}" cx="{cx}" cy="{cy}" r="2.5"/>')
        else:
            out.append(f'<polyline class="line {line.css}" points="{" ".join(run)}"/>')
    return out


def _head(ident: str, title: str, desc: str, width: int, height: int, css: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(desc)}</desc>'
    )


@dataclass(frozen=True)
class _Frame:
    """Where the plot area sits in the image and how values map onto it."""

    left: int
    top: int
    width: int
    height: int
    ticks: Sequence[float]

    def y(self, value: float) -> float:
        low, high = self.ticks[0], self.ticks[-1]
        return self.top + self.height - (value - low) / ((high - low) or 1.0) * self.height

    def xs(self, n: int) -> list[float]:
        if n == 1:
            return [self.left + self.width / 2]
        return [self.left + self.width * i / (n - 1) for i in range(n)]


def _axes(
    frame: _Frame, xs: Sequence[float], x_labels: Sequence[str], titles: tuple[str, str]
) -> str:
    right, bottom = frame.left + frame.width, frame.top + frame.height
    parts = ['<g class="axis" aria-hidden="true">']
    for t in frame.ticks:
        y = frame.y(t)
        parts.append(
            f'<line class="grid" x1="{frame.left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{fmt(t)}</text>"
        )
    labels = 3 if frame.width < 400 else 6  # a phone-sized chart gets fewer, wider labels
    for i in range(0, len(xs), max(1, math.ceil(len(xs) / labels))):
        parts.append(
            f'<text class="tick" x="{xs[i]:.1f}" y="{bottom + 18}" text-anchor="middle">'
            f"{escape(x_labels[i])}</text>"
        )
    parts.append(
        f'<line class="axis-line" x1="{frame.left}" x2="{frame.left}" y1="{frame.top}" '
        f'y2="{bottom}"/><line class="axis-line" x1="{frame.left}" x2="{right}" '
        f'y1="{bottom}" y2="{bottom}"/>'
    )
    y_label, x_label = titles
    if y_label:
        middle = frame.top + frame.height / 2
        parts.append(
            f'<text class="axis-title" transform="translate(14 {middle:.0f}) rotate(-90)" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )
    if x_label:
        parts.append(
            f'<text class="axis-title" x="{frame.left + frame.width / 2:.0f}" y="{bottom + 42}" '
            f'text-anchor="middle">{escape(x_label)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _target(frame: _Frame, xs: Sequence[float], target: Sequence[Number], label: str) -> str:
    parts = []
    for run in _points(target, xs, frame.y):
        points = run if len(run) > 1 else [run[0], run[0]]
        parts.append(f'<polyline class="target" points="{" ".join(points)}"/>')
    last = next(v for v in reversed(target) if v is not None)
    parts.append(
        f'<text class="target-label" x="{frame.left + frame.width + 4}" '
        f'y="{frame.y(last) + 4:.1f}">{escape(label)} {fmt(last)}</text>'
    )
    return "".join(parts)


def _legend(frame: _Frame, lines: Sequence[Line]) -> str:
    """One row above the plot: a sample of each series' line and its name."""
    parts = []
    for k, line in enumerate(lines):
        lx = frame.left + k * 100
        parts.append(
            f'<line class="line {line.css}" x1="{lx}" x2="{lx + 28}" y1="10" y2="10"/>'
            f'<text class="legend" x="{lx + 34}" y="14">{escape(line.name)}</text>'
        )
    return "".join(parts)


def line_chart(
    *,
    ident: str,
    title: str,
    desc: str,
    x_labels: Sequence[str],
    lines: Sequence[Line],
    target: Sequence[Number] | None = None,
    target_label: str = "target",
    y_label: str = "",
    x_label: str = "",
    width: int = 880,
    height: int = 300,
) -> str:
    """A line chart of ``lines`` over ``x_labels`` with a dashed target line (one value per x;
    a step line when the target changed). Axis labels, tick labels and the target's label are
    text; a legend names the series when there is more than one."""
    finite = [v for ln in lines for v in ln.values if v is not None and math.isfinite(v)]
    targets = [v for v in (target or []) if v is not None and math.isfinite(v)]
    ticks = value_ticks(finite + targets)
    top = 30 if len(lines) > 1 else 16  # room for the legend
    left, right = (48, 88) if width < 600 else (64, 110)
    frame = _Frame(left, top, width - left - right, height - top - 60, ticks)
    xs = frame.xs(len(x_labels)) if x_labels else []
    parts = [_head(ident, title, desc, width, height, "chart")]
    parts.append(_axes(frame, xs, x_labels, (y_label, x_label)))
    if target is not None and targets:
        parts.append(_target(frame, xs, target, target_label))
    for line in lines:
        parts.extend(_series_markup(line, xs, frame.y))
    if len(lines) > 1:
        parts.append(_legend(frame, lines))
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    values: Sequence[Number],
    *,
    ident: str,
    title: str,
    desc: str,
    target: float = 1.0,
    width: int = 132,
    height: int = 36,
) -> str:
    """A small trend line with the target as a dashed line; the last point is marked.

    Colours are presentation attributes, so the same markup works inline in a page (where the
    stylesheet may override them) and as an image file of its own."""
    pad = 4
    finite = [v for v in values if v is not None and math.isfinite(v)]
    low = min([target, *finite]) if finite else target - 0.5
    high = max([target, *finite]) if finite else target + 0.5
    span = (high - low) or 1.0
    n = len(values)

    def x_at(i: int) -> float:
        return pad + ((width - 2 * pad) * i / (n - 1) if n > 1 else (width - 2 * pad) / 2)

    def y_at(v: float) -> float:
        return pad + (height - 2 * pad) * (1 - (v - low) / span)

    xs = [x_at(i) for i in range(n)]
    parts = [_head(ident, title, desc, width, height, "spark")]
    ty = y_at(target)
    parts.append(
        f'<line class="target" x1="{pad}" x2="{width - pad}" y1="{ty:.1f}" y2="{ty:.1f}" '
        'stroke="#595959" stroke-width="1" stroke-dasharray="3 2"/>'
    )
    for run in _points(values, xs, y_at):
        if len(run) == 1:
            cx, cy = run[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="#1d4f91"/>')
        else:
            parts.append(
                f'<polyline points="{" ".join(run)}" fill="none" stroke="#1d4f91" '
                'stroke-width="2" stroke-linejoin="round"/>'
            )
    last = next(((xs[i], v) for i, v in reversed(list(enumerate(values))) if v is not None), None)
    if last is not None:
        parts.append(f'<circle cx="{last[0]:.1f}" cy="{y_at(last[1]):.1f}" r="3" fill="#1d4f91"/>')
    parts.append("</svg>")
    return "".join(parts)


def trend_sparkline(
    ident: str, name: str, trend: Sequence[tuple[object, Number]], *, width: int = 132
) -> str:
    """A metric's weekly-score sparkline; the description reads out every week's score."""
    weeks = len(trend)
    if weeks:
        first, last = trend[0][0], trend[-1][0]
        title = f"{name}: week scores, {weeks} weeks from {first} to {last}"
    else:
        title = f"{name}: no weeks"
    readout = "; ".join(
        f"week of {week}: {'no score' if score is None else fmt(score)}" for week, score in trend
    )
    desc = f"Target 1 (dashed). {readout}." if readout else "No weeks."
    return sparkline([s for _, s in trend], ident=ident, title=title, desc=desc, width=width)


def both_sizes(**chart: Any) -> dict[str, str]:
    """``line_chart(**chart)`` drawn for a wide screen and for a phone (``wide``, ``narrow``;
    the stylesheet shows one of them). The phone's drawing gets ids of its own."""
    ident = chart.pop("ident")
    return {
        "wide": line_chart(ident=ident, **chart),
        "narrow": line_chart(ident=f"{ident}-narrow", width=420, height=280, **chart),
    }


def window_scores(
    ident: str, title: str, what: str, rows: list[dict[str, Any]], **extra: Any
) -> Any:
    """Week, month and quarter scores per as-of date (history rows ``{as_of, week, month,
    quarter}``) drawn for both screens against the target 1; ``what`` names the scores."""
    return both_sizes(
        ident=ident,
        title=title,
        desc=f"Week (solid), month (dashed) and quarter (dotted) {what}; the target is 1.",
        x_labels=[r["as_of"].isoformat() for r in rows],
        lines=[
            Line("week", [r["week"] for r in rows], "s1"),
            Line("month", [r["month"] for r in rows], "s2"),
            Line("quarter", [r["quarter"] for r in rows], "s3"),
        ],
        target=[1.0] * len(rows),
        x_label="as-of date",
        **extra,
    )
