"""Pure, table-driven tests of the scoring engine (api/scoring): no database.

Covers docs/contract.md "Scoring": Boston's check figures, every window boundary, baselines (leap
days, years without data, baseline_years), zero events, missing days, targets changing
mid-window, metrics without data, aggregations, metric_logic and as_of_dates_affected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import pytest

from api.scoring.aggregates import EMPTY, Aggregate, Point, Series
from api.scoring.scores import (
    MetricSpec,
    ScoreRow,
    WindowScore,
    mean_score,
    metric_logic,
    score_as_of,
    window_score,
)
from api.scoring.windows import (
    WINDOW_NAMES,
    Window,
    as_of_dates_affected,
    as_of_dates_affected_by_window,
    date_range,
    shift_window,
    shift_years,
    windows_as_of,
)
from tests.scoring import naive

D = dt.date
AS_OF = D(2026, 5, 16)
EXACT = 5e-16  # the published figures have 15 decimals


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    return date_range(start, end)


def values(pairs: Iterable[tuple[dt.date, float]]) -> Series:
    return Series(Point(d, v, None, None) for d, v in pairs)


def ratios(triples: Iterable[tuple[dt.date, float, float]]) -> Series:
    return Series(Point(d, n / den if den else None, n, den) for d, n, den in triples)


def spread(
    span: Sequence[dt.date], total_num: float, total_den: float, num: float, den: float
) -> list[tuple[dt.date, float, float]]:
    """Days in ``span``: all but the last get (num, den); the last makes the totals exact."""
    rows = [(d, num, den) for d in span[:-1]]
    rest = len(span) - 1
    rows.append((span[-1], total_num - num * rest, total_den - den * rest))
    return rows


def one(spec: MetricSpec, series: Series, as_of: dt.date = AS_OF) -> ScoreRow:
    (row,) = score_as_of(spec, series, [as_of])
    return row


def window(row: ScoreRow, name: str) -> WindowScore:
    result: WindowScore = getattr(row, name)
    return result


def spec(
    aggregation: str,
    direction: str = "higher_is_better",
    reference: str = "target",
    target: float | None = None,
    baseline_years: int = 10,
    targets: tuple[tuple[dt.date, float], ...] | None = None,
) -> MetricSpec:
    if targets is None:
        targets = ((D(2000, 1, 1), target),) if target is not None else ()
    return MetricSpec(direction, aggregation, reference, targets, baseline_years)


# --- Boston check figures (docs/contract.md, run of 2026-05-16) ---------------------------------

SPEC_311 = spec("pooled_ratio", target=0.95)
# The windows as of Saturday 2026-05-16, written out (not taken from the code under test).
W = {
    "day": Window(D(2026, 5, 15), D(2026, 5, 15)),
    "week": Window(D(2026, 5, 4), D(2026, 5, 10)),
    "month": Window(D(2026, 4, 1), D(2026, 4, 30)),
    "quarter": Window(D(2026, 2, 1), D(2026, 4, 30)),
}
SERIES_311 = ratios(
    [
        (D(2026, 5, 15), 741.0, 788.0),
        *spread(days(*W["week"]), 4917, 5278, 700, 750),
        *spread(days(*W["month"]), 20973, 23418, 700, 780),
        *spread(days(W["quarter"].start, D(2026, 3, 31)), 67842 - 20973, 75779 - 23418, 790, 880),
        # noise outside every window must not count
        (D(2026, 5, 11), 1.0, 1000.0),
        (D(2026, 1, 31), 1.0, 1000.0),
        (D(2026, 5, 16), 1.0, 9.0),
    ]
)


@pytest.mark.parametrize(
    ("name", "numerator", "denominator", "figure"),
    [
        ("day", 741, 788, 0.989847715736041),
        ("week", 4917, 5278, 0.980634610398676),
        ("month", 20973, 23418, 0.942729614196907),
        ("quarter", 67842, 75779, 0.942380231712577),
    ],
)
def test_boston_311_check_figures(
    name: str, numerator: float, denominator: float, figure: float
) -> None:
    w = window(one(SPEC_311, SERIES_311), name)
    assert w.score == pytest.approx(figure, rel=0, abs=EXACT)
    assert w.score is not None and round(w.score, 15) == figure
    assert (w.numerator, w.denominator) == (numerator, denominator)


def test_boston_ems_median_check_figure() -> None:
    ems = spec("median", "lower_is_better", target=6.0)
    week = days(*W["week"])
    series = values(
        [(D(2026, 5, 15), 7.1), *list(zip(week, [5.0, 9.0, 7.1, 6.0, 8.0, 7.5, 7.0], strict=True))]
    )
    row = one(ems, series)
    for name in ("day", "week"):
        w = window(row, name)
        assert w.score == pytest.approx(0.845070422535211, rel=0, abs=EXACT)
        assert (w.numerator, w.denominator) == (6.0, 7.1)
    # no data in April: Boston still prints the target
    assert window(row, "month") == WindowScore(None, 6.0, None)


def test_boston_bfd_baseline_check_figure() -> None:
    bfd = spec("mean", "lower_is_better", "baseline", baseline_years=11)
    week = days(*W["week"])  # 2026-05-04..05-10
    current = list(zip(week, [200.0, 210, 205, 215, 208, 206, 212], strict=True))
    assert sum(v for _, v in current) == 208 * 7
    history: list[tuple[dt.date, float]] = []
    for k in range(1, 12):
        for d in week:
            history.append((d.replace(year=d.year - k), 188.0))
    history[-1] = (history[-1][0], 188.0 + 14513 - 188 * 77)
    assert len(history) == 77 and sum(v for _, v in history) == 14513
    # a 12th year back is beyond baseline_years and must not count
    history += [(d.replace(year=d.year - 12), 1000.0) for d in week]
    row = one(bfd, values(current + history + [(D(2026, 5, 15), 208.0)]))
    baseline = 14513 / 77
    assert baseline == pytest.approx(188.480519480519, abs=1e-12)
    for name in ("day", "week"):  # the day window uses the week's baseline
        w = window(row, name)
        assert w.score == pytest.approx(0.906156343656344, rel=0, abs=EXACT)
        assert (w.numerator, w.denominator) == (baseline, 208.0)


# --- windows -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "day", "week", "month", "quarter"),
    [
        # docs/contract.md example (a Saturday)
        ("2026-05-16", "05-15", ("05-04", "05-10"), ("04-01", "04-30"), ("02-01", "04-30")),
        # a Monday: the week just ended is the previous Monday..Sunday
        ("2026-05-18", "05-17", ("05-11", "05-17"), ("04-01", "04-30"), ("02-01", "04-30")),
        # a Sunday: the current week is not complete
        ("2026-05-17", "05-16", ("05-04", "05-10"), ("04-01", "04-30"), ("02-01", "04-30")),
        # the 1st of a month: the month just ended is complete
        ("2026-05-01", "04-30", ("04-20", "04-26"), ("04-01", "04-30"), ("02-01", "04-30")),
        # the last day of a month
        ("2026-05-31", "05-30", ("05-18", "05-24"), ("04-01", "04-30"), ("02-01", "04-30")),
        ("2026-04-30", "04-29", ("04-20", "04-26"), ("03-01", "03-31"), ("01-01", "03-31")),
    ],
)
def test_windows_2026(
    as_of: str, day: str, week: tuple[str, str], month: tuple[str, str], quarter: tuple[str, str]
) -> None:
    def d(md: str) -> dt.date:
        return D.fromisoformat(f"2026-{md}")

    w = windows_as_of(D.fromisoformat(as_of))
    assert w == {
        "day": Window(d(day), d(day)),
        "week": Window(d(week[0]), d(week[1])),
        "month": Window(d(month[0]), d(month[1])),
        "quarter": Window(d(quarter[0]), d(quarter[1])),
    }
    assert w["week"].start.weekday() == 0 and (w["week"].end - w["week"].start).days == 6


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        # January: week, month and quarter all in the previous year
        (
            "2026-01-10",
            {
                "day": ("2026-01-09", "2026-01-09"),
                "week": ("2025-12-29", "2026-01-04"),
                "month": ("2025-12-01", "2025-12-31"),
                "quarter": ("2025-10-01", "2025-12-31"),
            },
        ),
        (
            "2026-01-01",
            {
                "day": ("2025-12-31", "2025-12-31"),
                "week": ("2025-12-22", "2025-12-28"),
                "month": ("2025-12-01", "2025-12-31"),
                "quarter": ("2025-10-01", "2025-12-31"),
            },
        ),
        # February: the quarter spans the year change
        (
            "2026-02-14",
            {
                "day": ("2026-02-13", "2026-02-13"),
                "week": ("2026-02-02", "2026-02-08"),
                "month": ("2026-01-01", "2026-01-31"),
                "quarter": ("2025-11-01", "2026-01-31"),
            },
        ),
        # March of a leap year: February has 29 days, quarter Dec-Feb
        (
            "2024-03-10",
            {
                "day": ("2024-03-09", "2024-03-09"),
                "week": ("2024-02-26", "2024-03-03"),
                "month": ("2024-02-01", "2024-02-29"),
                "quarter": ("2023-12-01", "2024-02-29"),
            },
        ),
        # the day window is the leap day itself
        (
            "2024-03-01",
            {
                "day": ("2024-02-29", "2024-02-29"),
                "week": ("2024-02-19", "2024-02-25"),
                "month": ("2024-02-01", "2024-02-29"),
                "quarter": ("2023-12-01", "2024-02-29"),
            },
        ),
        # March of a common year
        (
            "2025-03-05",
            {
                "day": ("2025-03-04", "2025-03-04"),
                "week": ("2025-02-24", "2025-03-02"),
                "month": ("2025-02-01", "2025-02-28"),
                "quarter": ("2024-12-01", "2025-02-28"),
            },
        ),
    ],
)
def test_windows_year_change_and_leap(as_of: str, expected: dict[str, tuple[str, str]]) -> None:
    w = windows_as_of(D.fromisoformat(as_of))
    assert {k: (v.start.isoformat(), v.end.isoformat()) for k, v in w.items()} == expected


def test_naive_windows_agree_with_windows_as_of() -> None:
    """The day-by-day windows the naive oracles below use are the published ones."""
    for as_of in days(D(2023, 11, 1), D(2025, 3, 31)):
        ws = windows_as_of(as_of)
        assert naive.windows(as_of) == ws, as_of
        for w in ws.values():
            for k in (1, 3, 4):
                assert naive.shifted(w, k) == shift_window(w, k), (as_of, w, k)


def test_windows_brute_force_properties() -> None:
    for as_of in days(D(2023, 11, 1), D(2025, 3, 31)):
        w = windows_as_of(as_of)
        assert w["day"] == Window(as_of - dt.timedelta(1), as_of - dt.timedelta(1))
        # week: the last Monday-Sunday fully before as_of
        assert w["week"].start.weekday() == 0 and w["week"].end.weekday() == 6
        assert w["week"].end < as_of <= w["week"].end + dt.timedelta(7)
        # month: the calendar month before as_of's month
        assert w["month"].start.day == 1 and (w["month"].end + dt.timedelta(1)).day == 1
        assert w["month"].end + dt.timedelta(1) == as_of.replace(day=1)
        # quarter: three whole months ending with the month window
        assert w["quarter"].end == w["month"].end and w["quarter"].start.day == 1
        months = {(d.year, d.month) for d in days(*w["quarter"])}
        assert len(months) == 3


# --- shifting by whole years ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "years", "end", "expected"),
    [
        ("2026-05-16", 1, False, "2025-05-16"),
        ("2026-05-16", 10, True, "2016-05-16"),
        ("2028-02-29", 1, False, "2027-02-28"),  # Feb 29 maps to Feb 28
        ("2028-02-29", 4, False, "2024-02-29"),
        ("2028-02-29", 1, True, "2027-02-28"),  # last of Feb -> last of Feb
        ("2025-02-28", 1, True, "2024-02-29"),  # end: last of Feb includes the leap day
        ("2025-02-28", 1, False, "2024-02-28"),  # start: same date
        ("2024-02-28", 1, True, "2023-02-28"),  # not the last day of Feb in 2024
        ("2027-02-28", 3, True, "2024-02-29"),
        ("2027-02-28", 2, True, "2025-02-28"),
        ("2024-03-01", 1, True, "2023-03-01"),
    ],
)
def test_shift_years(day: str, years: int, end: bool, expected: str) -> None:
    assert shift_years(D.fromisoformat(day), years, end=end) == D.fromisoformat(expected)


@pytest.mark.parametrize(
    ("start", "end", "years", "expected"),
    [
        # February 2025 one year back is all of February 2024, leap day included
        ("2025-02-01", "2025-02-28", 1, ("2024-02-01", "2024-02-29")),
        # February 2024 one year back is all of February 2023
        ("2024-02-01", "2024-02-29", 1, ("2023-02-01", "2023-02-28")),
        # a quarter Dec-Feb
        ("2024-12-01", "2025-02-28", 1, ("2023-12-01", "2024-02-29")),
        # the week containing 2028-02-29 (Tuesday)
        ("2028-02-28", "2028-03-05", 1, ("2027-02-28", "2027-03-05")),
        ("2028-02-28", "2028-03-05", 4, ("2024-02-28", "2024-03-05")),
        # a week starting on a leap day (2044-02-29 is a Monday): Feb 29 -> Feb 28
        ("2044-02-29", "2044-03-06", 1, ("2043-02-28", "2043-03-06")),
        # the day window on a leap day
        ("2024-02-29", "2024-02-29", 1, ("2023-02-28", "2023-02-28")),
    ],
)
def test_shift_window(start: str, end: str, years: int, expected: tuple[str, str]) -> None:
    shifted = shift_window(Window(D.fromisoformat(start), D.fromisoformat(end)), years)
    assert (shifted.start.isoformat(), shifted.end.isoformat()) == expected


# --- baselines -----------------------------------------------------------------------------

MEAN_HIGHER_BASELINE = spec("mean", "higher_is_better", "baseline")
MEAN_LOWER_BASELINE = spec("mean", "lower_is_better", "baseline")


def test_leap_day_counts_in_february_baseline() -> None:
    """As of 2025-03-05 the month is February 2025; its baseline is all of February 2024."""
    as_of = D(2025, 3, 5)
    feb_2025 = [(d, 20.0) for d in days(D(2025, 2, 1), D(2025, 2, 28))]
    row = one(MEAN_HIGHER_BASELINE, values([*feb_2025, (D(2024, 2, 29), 10.0)]), as_of)
    assert window(row, "month") == WindowScore(2.0, 20.0, 10.0)
    assert window(row, "quarter") == WindowScore(2.0, 20.0, 10.0)
    # leap day plus the rest of February 2024: pooled over all its days
    feb_2024 = [(d, 10.0) for d in days(D(2024, 2, 1), D(2024, 2, 28))] + [(D(2024, 2, 29), 39.0)]
    row = one(MEAN_HIGHER_BASELINE, values(feb_2025 + feb_2024), as_of)
    assert window(row, "month").denominator == (10.0 * 28 + 39.0) / 29


def test_leap_february_baseline_from_common_year() -> None:
    """As of 2024-03-05 the month is February 2024 (29 days); its baseline February 2023."""
    as_of = D(2024, 3, 5)
    current = [(d, 30.0) for d in days(D(2024, 2, 1), D(2024, 2, 29))]
    history = [(d, 10.0) for d in days(D(2023, 2, 1), D(2023, 2, 28))]
    row = one(MEAN_HIGHER_BASELINE, values(current + history + [(D(2023, 3, 1), 999.0)]), as_of)
    assert window(row, "month") == WindowScore(3.0, 30.0, 10.0)


def test_week_with_leap_day_shifted_back() -> None:
    """Week 2028-02-28..03-05 (as of 2028-03-06): 2027's week is 02-28..03-05 (6 days)."""
    as_of = D(2028, 3, 6)
    current = [(d, 12.0) for d in days(D(2028, 2, 28), D(2028, 3, 5))]
    history = [(d, 6.0) for d in days(D(2027, 2, 28), D(2027, 3, 5))]
    outside = [(D(2027, 2, 27), 1000.0), (D(2027, 3, 6), 1000.0)]
    row = one(MEAN_HIGHER_BASELINE, values(current + history + outside), as_of)
    assert window(row, "week") == WindowScore(2.0, 12.0, 6.0)


def test_week_starting_on_leap_day_maps_to_feb_28() -> None:
    """Week 2044-02-29..03-06 one year back starts on 2043-02-28."""
    as_of = D(2044, 3, 7)
    assert windows_as_of(as_of)["week"] == Window(D(2044, 2, 29), D(2044, 3, 6))
    current = [(d, 8.0) for d in days(D(2044, 2, 29), D(2044, 3, 6))]
    history = [(D(2043, 2, 28), 4.0), (D(2043, 2, 27), 1000.0)]
    row = one(MEAN_HIGHER_BASELINE, values(current + history), as_of)
    assert window(row, "week") == WindowScore(2.0, 8.0, 4.0)


def test_baseline_skips_years_without_data_and_pools_days() -> None:
    week = days(*W["week"])
    current = [(d, 30.0) for d in week]
    one_back = [(d.replace(year=2025), 10.0) for d in week]  # 7 days of 10
    three_back = [(week[0].replace(year=2023), 50.0)]  # 1 day of 50; 2024 has nothing
    row = one(MEAN_HIGHER_BASELINE, values(current + one_back + three_back))
    baseline = (70.0 + 50.0) / 8  # pooled over days, not a mean of yearly means
    assert window(row, "week") == WindowScore(30.0 / baseline, 30.0, baseline)


@pytest.mark.parametrize(
    ("baseline_years", "expected"),
    [
        (1, None),  # only 2025: no data
        (2, None),
        (3, 10.0),  # 2023 has data
        (10, 10.0),
    ],
)
def test_baseline_years_limits_history(baseline_years: int, expected: float | None) -> None:
    week = days(*W["week"])
    series = values([(d, 20.0) for d in week] + [(d.replace(year=2023), 10.0) for d in week])
    row = one(spec("mean", reference="baseline", baseline_years=baseline_years), series)
    w = window(row, "week")
    assert w.denominator == expected
    assert w.score == (None if expected is None else 2.0)
    assert w.numerator == 20.0


def test_day_window_uses_week_baseline() -> None:
    week = days(*W["week"])
    series = values(
        [(D(2026, 5, 15), 20.0)]
        + [(d.replace(year=2025), 10.0) for d in week]
        + [(D(2025, 5, 15), 1000.0), (D(2025, 5, 14), 1000.0)]  # last year's same day: unused
    )
    row = one(MEAN_HIGHER_BASELINE, series)
    assert window(row, "day") == WindowScore(2.0, 20.0, 10.0)
    assert window(row, "week") == WindowScore(None, None, 10.0)  # no current week data


def test_month_and_quarter_baselines() -> None:
    april = days(*W["month"])
    feb_mar = days(D(2026, 2, 1), D(2026, 3, 31))
    series = values(
        [(d, 40.0) for d in april]
        + [(d, 10.0) for d in feb_mar]
        + [(d.replace(year=2025), 20.0) for d in april]
        + [(d.replace(year=2024), 10.0) for d in feb_mar]
    )
    row = one(MEAN_LOWER_BASELINE, series)
    assert window(row, "month") == WindowScore(20.0 / 40.0, 20.0, 40.0)
    q_current = (40.0 * 30 + 10.0 * 59) / 89
    q_base = (20.0 * 30 + 10.0 * 59) / 89
    q = window(row, "quarter")
    assert q.score == pytest.approx(q_base / q_current, rel=1e-15)
    assert (q.numerator, q.denominator) == (pytest.approx(q_base), pytest.approx(q_current))


# --- zero events, no cap, floor ------------------------------------------------------------


def test_zero_homicides_day_has_no_day_score() -> None:
    week = days(*W["week"])
    series = values(
        [(D(2026, 5, 15), 0.0)]
        + [(d, 1.0) for d in week]
        + [(d.replace(year=2025), 2.0) for d in week]
    )
    row = one(MEAN_LOWER_BASELINE, series)
    assert window(row, "day") == WindowScore(None, 2.0, 0.0)  # divisor 0: null, not infinity
    assert window(row, "week") == WindowScore(2.0, 2.0, 1.0)  # no cap


def test_window_mean_zero_lower_is_better_is_null() -> None:
    week = days(*W["week"])
    series = values([(d, 0.0) for d in week] + [(d.replace(year=2025), 3.0) for d in week])
    row = one(MEAN_LOWER_BASELINE, series)
    assert window(row, "week") == WindowScore(None, 3.0, 0.0)


def test_higher_is_better_baseline_zero_is_null() -> None:
    week = days(*W["week"])
    series = values([(d, 5.0) for d in week] + [(d.replace(year=2025), 0.0) for d in week])
    row = one(MEAN_HIGHER_BASELINE, series)
    assert window(row, "week") == WindowScore(None, 5.0, 0.0)


@pytest.mark.parametrize(
    ("spec_", "current", "reference", "expected"),
    [
        # no cap
        (spec("mean", target=2.0), 6.0, 2.0, WindowScore(3.0, 6.0, 2.0)),
        (spec("median", "lower_is_better", target=6.0), 2.0, 6.0, WindowScore(3.0, 6.0, 2.0)),
        # floor at 0
        (spec("mean", target=2.0), -1.0, 2.0, WindowScore(0.0, -1.0, 2.0)),
        # zero divisor
        (spec("mean", "lower_is_better", target=2.0), 0.0, 2.0, WindowScore(None, 2.0, 0.0)),
        # no data, no reference
        (spec("mean", target=2.0), None, None, WindowScore(None, None, None)),
        (spec("mean", target=2.0), 4.0, None, WindowScore(None, 4.0, None)),
        # target-over-aggregate publishes the target even without data
        (spec("median", "lower_is_better", target=6.0), None, 6.0, WindowScore(None, 6.0, None)),
        # aggregate-over-target (higher) publishes (A, target)
        (spec("mean", target=4.0), None, 4.0, WindowScore(None, None, 4.0)),
    ],
)
def test_window_score_table(
    spec_: MetricSpec, current: float | None, reference: float | None, expected: WindowScore
) -> None:
    agg = EMPTY if current is None else Aggregate(current, 1, None, None)
    assert window_score(spec_, agg, reference) == expected


def test_no_cap_pooled_ratio() -> None:
    s = spec("pooled_ratio", target=0.25)
    row = one(s, ratios([(D(2026, 5, 15), 3.0, 4.0)]))
    assert window(row, "day") == WindowScore(3.0, 3.0, 4.0)


# --- missing days --------------------------------------------------------------------------


def test_missing_days_use_only_days_present() -> None:
    week = days(*W["week"])
    s = spec("pooled_ratio", target=0.5)
    row = one(s, ratios([(week[0], 1.0, 4.0), (week[3], 2.0, 4.0), (week[6], 3.0, 4.0)]))
    assert window(row, "week") == WindowScore((6.0 / 12.0) / 0.5, 6.0, 12.0)
    m = spec("mean", target=2.0)
    row = one(m, values([(week[1], 1.0), (week[5], 5.0)]))
    assert window(row, "week") == WindowScore(1.5, 3.0, 2.0)
    med = spec("median", "lower_is_better", target=6.0)
    row = one(med, values([(week[1], 3.0), (week[2], 100.0), (week[5], 6.0)]))
    assert window(row, "week") == WindowScore(1.0, 6.0, 6.0)


@pytest.mark.parametrize(
    ("spec_", "series", "expected"),
    [
        # target-over-aggregate: the target, null aggregate
        (spec("median", "lower_is_better", target=6.0), values([]), (None, 6.0, None)),
        (spec("sum", "lower_is_better", target=6.0), values([]), (None, 6.0, None)),
        # aggregate-over-target: (null, target)
        (spec("mean", target=6.0), values([]), (None, None, 6.0)),
        # pooled ratio: null sums
        (spec("pooled_ratio", target=0.9), ratios([]), (None, None, None)),
        (spec("pooled_ratio", "lower_is_better", target=0.9), ratios([]), (None, None, None)),
        # mean of ratios: always null, null
        (spec("mean_of_ratios", target=0.9), ratios([]), (None, None, None)),
        # baseline without current data: the baseline is published
        (
            MEAN_LOWER_BASELINE,
            values([(d.replace(year=2025), 4.0) for d in days(*W["week"])]),
            (None, 4.0, None),
        ),
        (
            MEAN_HIGHER_BASELINE,
            values([(d.replace(year=2025), 4.0) for d in days(*W["week"])]),
            (None, None, 4.0),
        ),
    ],
)
def test_window_without_data(
    spec_: MetricSpec, series: Series, expected: tuple[float | None, ...]
) -> None:
    row = one(spec_, series)
    assert tuple(window(row, "week")) == expected
    assert tuple(window(row, "day")) == expected  # the day window uses the week's reference


def test_data_outside_windows_only_gives_null_scores() -> None:
    s = spec("pooled_ratio", target=0.9)
    row = one(s, ratios([(D(2026, 1, 15), 1.0, 2.0), (D(2026, 5, 16), 1.0, 2.0)]))
    for name in WINDOW_NAMES:
        assert window(row, name) == WindowScore(None, None, None)


# --- targets that change -------------------------------------------------------------------

CHANGING = spec(
    "pooled_ratio",
    targets=((D(2026, 1, 1), 0.5), (D(2026, 5, 6), 0.8), (D(2026, 5, 17), 0.25)),
)
CHANGING_SERIES = ratios(
    [(d, 2.0, 5.0) for d in days(D(2026, 1, 1), D(2026, 5, 20))]  # ratio 0.4 every day
)


@pytest.mark.parametrize(
    ("as_of", "target"),
    [
        ("2026-05-16", 0.8),  # changed mid-week and mid-quarter: the one in force on as_of
        ("2026-05-06", 0.8),  # effective on the as-of date itself
        ("2026-05-05", 0.5),
        ("2026-05-17", 0.25),
        ("2026-01-01", 0.5),
    ],
)
def test_target_in_force_on_as_of_applies_to_all_windows(as_of: str, target: float) -> None:
    day = D.fromisoformat(as_of)
    assert CHANGING.target_on(day) == target
    row = one(CHANGING, CHANGING_SERIES, day)
    for name in WINDOW_NAMES:
        w = window(row, name)
        if w.denominator:  # windows with data
            assert w.score == pytest.approx(0.4 / target, rel=1e-15)


def test_as_of_before_first_target_has_no_score() -> None:
    row = one(CHANGING, CHANGING_SERIES, D(2025, 12, 31))
    assert CHANGING.target_on(D(2025, 12, 31)) is None
    for name in WINDOW_NAMES:
        assert window(row, name).score is None
    median = spec("median", "lower_is_better", targets=((D(2026, 6, 1), 6.0),))
    row = one(median, values([(D(2026, 5, 15), 7.1)]))
    assert window(row, "day") == WindowScore(None, None, 7.1)


# --- metrics without any data --------------------------------------------------------------


@pytest.mark.parametrize(
    "spec_",
    [
        spec("pooled_ratio", target=0.9),
        spec("mean_of_ratios", target=0.9),
        spec("median", "lower_is_better", target=6.0),
        spec("mean", target=6.0),
        spec("sum", "lower_is_better", target=6.0),
        MEAN_HIGHER_BASELINE,
        MEAN_LOWER_BASELINE,
        spec("sum", "lower_is_better", "baseline"),
    ],
)
def test_metric_without_data(spec_: MetricSpec) -> None:
    for as_of in (AS_OF, D(2024, 3, 1), D(2026, 1, 1)):
        row = one(spec_, Series([]), as_of)
        for name in WINDOW_NAMES:
            w = window(row, name)
            assert w.score is None
            target = spec_.target_on(as_of)
            assert set(w[1:]) <= {None, target}


# --- aggregations --------------------------------------------------------------------------


def test_mean_of_ratios_differs_from_pooled_ratio() -> None:
    week = days(*W["week"])
    data = [(week[0], 1.0, 2.0), (week[1], 30.0, 40.0)]
    pooled = window(one(spec("pooled_ratio", target=0.5), ratios(data)), "week")
    mean_r = window(one(spec("mean_of_ratios", target=0.5), ratios(data)), "week")
    assert pooled == WindowScore((31.0 / 42.0) / 0.5, 31.0, 42.0)
    assert mean_r == WindowScore(((0.5 + 0.75) / 2) / 0.5, None, None)
    assert pooled.score != mean_r.score


def test_series_aggregates() -> None:
    week = days(*W["week"])
    s = Series(
        [
            Point(week[0], 0.5, 1.0, 2.0),
            Point(week[1], 0.75, 30.0, 40.0),
            Point(week[2], None, 5.0, 0.0),  # zero denominator: no ratio, sums still count
        ]
    )
    assert s.window("pooled_ratio", *W["week"]) == Aggregate(36.0 / 42.0, 3, 36.0, 42.0)
    assert s.window("mean_of_ratios", *W["week"]) == Aggregate(0.625, 3, 36.0, 42.0)
    v = values([(week[0], 1.0), (week[1], 4.0), (week[2], 10.0), (week[4], 2.5)])
    assert v.window("sum", *W["week"]) == Aggregate(17.5, 4, None, None)
    assert v.window("mean", *W["week"]) == Aggregate(17.5 / 4, 4, None, None)
    assert v.window("median", *W["week"]) == Aggregate(3.25, 4, None, None)
    assert v.window("mean", week[0], week[0]) == Aggregate(1.0, 1, None, None)
    assert v.window("mean", week[3], week[3]) == EMPTY


def test_sum_against_target() -> None:
    week = days(*W["week"])
    s = spec("sum", "lower_is_better", target=10.0)
    row = one(s, values([(week[0], 2.0), (week[1], 3.0), (D(2026, 5, 15), 4.0)]))
    assert window(row, "week") == WindowScore(2.0, 10.0, 5.0)
    assert window(row, "day") == WindowScore(2.5, 10.0, 4.0)


def test_mean_score() -> None:
    assert mean_score([1.0, None, 0.5]) == 0.75
    assert mean_score([None, None]) is None
    assert mean_score([]) is None
    assert mean_score([0.1] * 10) == 0.1


# --- metric_logic --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "aggregation", "reference", "logic"),
    [
        (
            "higher_is_better",
            "pooled_ratio",
            "target",
            "sum(numerator_value)/sum(denominator_value)/target",
        ),
        ("lower_is_better", "median", "target", "target / median"),
        ("lower_is_better", "mean", "baseline", "historical_average / current_average"),
        ("higher_is_better", "mean", "baseline", "current_average / historical_average"),
        (
            "higher_is_better",
            "mean_of_ratios",
            "target",
            "average(sum(numerator_value)/sum(denominator_value))/target",
        ),
        ("higher_is_better", "mean", "target", "average(value)/target"),
        ("lower_is_better", "sum", "target", "target / sum(value)"),
    ],
)
def test_metric_logic(direction: str, aggregation: str, reference: str, logic: str) -> None:
    assert metric_logic(direction, aggregation, reference) == logic


# --- as_of_dates_affected ------------------------------------------------------------------


def _brute_force_affected(x: dt.date, baseline_years: int) -> set[dt.date]:
    out = set()
    for as_of in days(x - dt.timedelta(days=10), x + dt.timedelta(days=366 * baseline_years + 140)):
        for w in naive.windows(as_of).values():
            if w.start <= x <= w.end:
                out.add(as_of)
            for k in range(1, baseline_years + 1):
                s = naive.shifted(w, k)
                if s.start <= x <= s.end:
                    out.add(as_of)
    return out


AFFECTED_DAYS = [
    "2024-02-29",
    "2023-02-28",
    "2024-02-28",
    "2025-02-28",
    "2024-03-01",
    "2025-12-31",
    "2026-01-01",
    "2026-05-15",
    "2026-05-10",
    "2026-05-04",
    "2027-02-28",
    "2043-02-28",
]


@pytest.mark.parametrize("day", AFFECTED_DAYS)
def test_as_of_dates_affected_current_windows_exactly(day: str) -> None:
    x = D.fromisoformat(day)
    assert as_of_dates_affected([x], 0) == _brute_force_affected(x, 0)


@pytest.mark.parametrize("day", AFFECTED_DAYS)
def test_as_of_dates_affected_with_baselines(day: str) -> None:
    x = D.fromisoformat(day)
    got = as_of_dates_affected([x], 2)
    missing = _brute_force_affected(x, 2) - got
    assert not missing, sorted(missing)[:10]


def _brute_force_by_window(x: dt.date, baseline_years: int) -> list[set[dt.date]]:
    """Per window kind, the as-of dates whose figures of that window see ``x`` (the day
    window through its own day and the week's baseline, as Boston scores it)."""
    out: list[set[dt.date]] = [set(), set(), set(), set()]
    for as_of in days(x - dt.timedelta(days=10), x + dt.timedelta(days=366 * baseline_years + 140)):
        windows = naive.windows(as_of)
        for i, name in enumerate(WINDOW_NAMES):
            w = windows[name]
            reference = windows["week"] if name == "day" else w
            if w.start <= x <= w.end or any(
                naive.shifted(reference, k).start <= x <= naive.shifted(reference, k).end
                for k in range(1, baseline_years + 1)
            ):
                out[i].add(as_of)
    return out


@pytest.mark.parametrize("day", AFFECTED_DAYS)
@pytest.mark.parametrize("years", [0, 2])
def test_as_of_dates_affected_by_window_cover_each_window(day: str, years: int) -> None:
    x = D.fromisoformat(day)
    got = as_of_dates_affected_by_window([x], years)
    for name, found, wanted in zip(
        WINDOW_NAMES, got, _brute_force_by_window(x, years), strict=True
    ):
        assert not wanted - found, (name, sorted(wanted - found)[:5])
        if years == 0:
            assert found == wanted, name  # current windows only: exactly


def test_as_of_dates_affected_leap_day_reaches_following_februaries() -> None:
    got = as_of_dates_affected([D(2024, 2, 29)], 2)
    # February 2025's and 2026's month windows (as of March) see 2024-02-29 in their baseline
    assert {D(2025, 3, 1), D(2025, 3, 31), D(2026, 3, 1), D(2026, 3, 31)} <= got
    # the quarter Dec-Feb as of 2025-03-xx, Jan-Mar as of 2025-04-xx, Feb-Apr as of 2025-05-xx
    assert {D(2025, 4, 30), D(2025, 5, 31)} <= got


def test_as_of_dates_affected_several_days_is_the_union() -> None:
    xs = [D(2024, 2, 29), D(2025, 7, 4), D(2025, 12, 31)]
    union: set[dt.date] = set()
    for x in xs:
        union |= as_of_dates_affected([x], 3)
    assert as_of_dates_affected(xs, 3) == union


def test_affected_dates_cover_every_score_change() -> None:
    """Changing one value changes scores only on as-of dates in the affected set."""
    s = spec("mean", "lower_is_better", "baseline", baseline_years=2)
    base = [(d, float(d.day % 7 + 1)) for d in days(D(2023, 1, 1), D(2026, 6, 30))]
    for x in (D(2024, 2, 29), D(2023, 2, 28), D(2024, 12, 31)):
        changed = [(d, v + 5.0 if d == x else v) for d, v in base]
        as_ofs = days(D(2023, 1, 1), D(2026, 8, 31))
        before = score_as_of(s, values(base), as_ofs)
        after = score_as_of(s, values(changed), as_ofs)
        differ = {b.as_of for b, a in zip(before, after, strict=True) if b != a}
        assert differ, x
        assert differ <= as_of_dates_affected([x], 2)


# --- score_as_of against a naive reference implementation ----------------------------------


def _naive(spec_: MetricSpec, points: dict[dt.date, float], as_of: dt.date) -> list[float | None]:
    """Straight from docs/contract.md: windows, shifted baselines pooled over days, A/R or R/A."""
    import statistics

    def inside(start: dt.date, end: dt.date) -> list[float]:
        return [points[d] for d in days(start, end) if d in points]

    def agg(xs: list[float]) -> float | None:
        if not xs:
            return None
        return statistics.median(xs) if spec_.aggregation == "median" else sum(xs) / len(xs)

    ws = naive.windows(as_of)
    out: list[float | None] = []
    for name in WINDOW_NAMES:
        a = agg(inside(*ws[name]))
        if spec_.reference == "target":
            r = spec_.target_on(as_of)
        else:
            ref_window = ws["week"] if name == "day" else ws[name]
            pooled: list[float] = []
            for k in range(1, spec_.baseline_years + 1):
                pooled += inside(*naive.shifted(ref_window, k))
            r = sum(pooled) / len(pooled) if pooled else None
        if a is None or r is None:
            out.append(None)
            continue
        num, den = (a, r) if spec_.higher_is_better else (r, a)
        out.append(None if den == 0 else max(0.0, num / den))
    return out


@pytest.mark.parametrize(
    "spec_",
    [
        spec("mean", "lower_is_better", "baseline", baseline_years=3),
        spec("mean", "higher_is_better", "baseline", baseline_years=2),
        spec("median", "lower_is_better", targets=((D(2024, 1, 1), 6.0), (D(2024, 6, 15), 5.0))),
        spec("mean", "higher_is_better", targets=((D(2024, 1, 1), 2.0), (D(2025, 2, 10), 3.0))),
    ],
)
def test_score_as_of_matches_naive_reference(spec_: MetricSpec) -> None:
    import random

    rng = random.Random(7)
    points = {
        d: float(rng.randint(0, 9))
        for d in days(D(2021, 1, 1), D(2025, 6, 30))
        if rng.random() < 0.8  # missing days
    }
    series = values(points.items())
    as_ofs = days(D(2023, 12, 1), D(2025, 4, 10))
    rows = score_as_of(spec_, series, as_ofs)
    for row in rows:
        got = [window(row, n).score for n in WINDOW_NAMES]
        want = _naive(spec_, points, row.as_of)
        assert [g is None for g in got] == [w is None for w in want], row.as_of
        for g, w in zip(got, want, strict=True):
            assert g == (None if w is None else pytest.approx(w, rel=1e-12)), row.as_of
        # caching across as-of dates gives the same as one date alone
        assert row == one(spec_, series, row.as_of)


# --- known problems ------------------------------------------------------------------------


def test_sum_against_baseline_day_window_is_on_a_daily_scale() -> None:
    week = days(*W["week"])
    series = values(
        [(D(2026, 5, 15), 10.0)]
        + [(d, 10.0) for d in week]
        + [(d.replace(year=2025), 10.0) for d in week]
    )
    row = one(spec("sum", "higher_is_better", "baseline"), series)
    assert window(row, "week").score == 1.0  # 70 this week vs 70 a year ago
    assert window(row, "day").score == 1.0  # 10 yesterday vs 10 a day a year ago


def test_sum_against_baseline_with_a_partial_baseline_year() -> None:
    week = days(*W["week"])
    series = values(
        [(d, 10.0) for d in week]
        + [(d.replace(year=2025), 10.0) for d in week]  # a full week a year ago
        + [(week[0].replace(year=2024), 10.0)]  # one day two years ago
    )
    row = one(spec("sum", "higher_is_better", "baseline"), series)
    # every day at the historical daily level (10): the week scores 1, not 70 / 40
    assert window(row, "week").score == 1.0
