"""What a metric can be: its direction, aggregation and reference, defined once.

The request and response schemas type their fields with these Literals, and the scoring code
branches on the same spellings; ``DIRECTIONS``, ``AGGREGATIONS`` and ``REFERENCES`` are the
values, in the order the documentation lists them.
"""

from __future__ import annotations

from typing import Literal, get_args

Direction = Literal["higher_is_better", "lower_is_better"]
Aggregation = Literal["pooled_ratio", "median", "mean", "mean_of_ratios", "sum"]
Reference = Literal["target", "baseline"]

DIRECTIONS: tuple[str, ...] = get_args(Direction)
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)
REFERENCES: tuple[str, ...] = get_args(Reference)
# Aggregations of a numerator and a denominator per day (the others take one value a day).
RATIO_AGGREGATIONS: tuple[str, ...] = ("pooled_ratio", "mean_of_ratios")
