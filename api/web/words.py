"""The scoring logic of a metric in plain words (for the metric pages and /about)."""

from __future__ import annotations

from typing import Any

from api.web.render import number

AGGREGATE = {
    "pooled_ratio": "all the window's numerators added up, divided by all its denominators "
    "added up",
    "median": "the median of the window's daily values",
    "mean": "the average of the window's daily values",
    "mean_of_ratios": "the average of each day's numerator divided by its denominator",
    "sum": "the total of the window's daily values",
}


def scoring_in_words(metric: dict[str, Any]) -> str:
    """How one metric's score is computed, e.g. for a pooled ratio against a target."""
    aggregate = AGGREGATE.get(metric["aggregation"], metric["aggregation"])
    higher = metric["direction"] == "higher_is_better"
    if metric["reference"] == "target":
        target = metric["target"]
        against = f"the target in force ({number(target)})" if target is not None else "the target"
    else:
        years = metric["baseline_years"]
        against = (
            f"the baseline (the average daily value on the same dates in up to {years} "
            "previous years)"
        )
    if higher:
        how = f"the result ({aggregate}) is divided by {against}."
    else:
        how = f"{against} is divided by the result ({aggregate})."
    better = "Higher is better" if higher else "Lower is better"
    return (
        f"{better}. For each window (day, week, month, quarter), {how} "
        "A score of 1 is on target, above 1 beats it; there is no cap. A window with no data, "
        "or whose divisor is 0, has no score."
    )
