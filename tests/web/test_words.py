"""The scoring logic in plain words, one sentence per kind of metric."""

from __future__ import annotations

import pytest

from api.web.words import scoring_in_words


@pytest.mark.parametrize(
    ("aggregation", "direction", "reference", "target", "expected"),
    [
        (
            "pooled_ratio",
            "higher_is_better",
            "target",
            0.95,
            "the result (all the window's numerators added up, divided by all its denominators "
            "added up) is divided by the target in force (0.95).",
        ),
        (
            "median",
            "lower_is_better",
            "target",
            6.0,
            "the target in force (6) is divided by the result (the median of the window's "
            "daily values).",
        ),
        (
            "mean",
            "lower_is_better",
            "baseline",
            None,
            "the baseline (the average daily value on the same dates in up to 10 previous "
            "years) is divided by the result (the average of the window's daily values).",
        ),
    ],
)
def test_each_logic_reads_as_a_sentence(
    aggregation: str, direction: str, reference: str, target: float | None, expected: str
) -> None:
    metric = {
        "aggregation": aggregation,
        "direction": direction,
        "reference": reference,
        "target": target,
        "baseline_years": 10,
    }
    text = scoring_in_words(metric)
    assert expected in text
    assert text.startswith("Higher is better." if direction == "higher_is_better" else "Lower")
    assert "no cap" in text and "has no score" in text
