"""Parsing and validation of ingest bodies, table-tested without a store."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import orjson
import pytest

from api.errors import Unprocessable
from api.ingest.parse import Parsed, parse, parse_csv, parse_json
from api.ingest.validate import MAX_ERRORS, MetricRef, validate

TODAY = dt.date(2026, 11, 30)
METRICS = {
    "wait-minutes": MetricRef(1, "wait-minutes", 1, "mean"),
    "calls-on-time": MetricRef(2, "calls-on-time", 1, "pooled_ratio"),
}


def check(records: list[Any], *, csv_lines: list[int] | None = None) -> list[dict[str, Any]]:
    parsed = Parsed(records, csv_lines is not None, csv_lines)
    _, errors = validate(parsed, METRICS, TODAY)
    return errors.items


def one(records: list[Any]) -> dict[str, Any]:
    errors = check(records)
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        ({"metric": "wait-minutes", "date": "11/27/2026", "value": 1}, "date", "'11/27/2026'"),
        ({"metric": "wait-minutes", "date": "2026-02-30", "value": 1}, "date", "'2026-02-30'"),
        ({"metric": "wait-minutes", "date": "2026-12-01", "value": 1}, "date", "future"),
        ({"metric": "wait-minutes", "date": "0001-01-01", "value": 1}, "date", "1970-01-01"),
        ({"metric": "wait-minutes", "date": "1969-12-31", "value": 1}, "date", "earliest"),
        ({"metric": "wait-minutes", "date": "2026-05-15", "value": "abc"}, "value", "'abc'"),
        ({"metric": "wait-minutes", "date": "2026-05-15", "value": -2}, "value", "negative"),
        ({"metric": "wait-minutes", "date": "2026-05-15", "value": 1e308}, "value", "at most"),
        ({"metric": "nope", "date": "2026-05-15", "value": 1}, "metric", "'nope'"),
        (
            {
                "metric": "calls-on-time",
                "date": "2026-05-15",
                "numerator": 1e15,
                "denominator": 1e-300,
            },
            "denominator",
            "numerator/denominator",
        ),
        (
            {"metric": "calls-on-time", "date": "2026-05-15", "numerator": 1e308, "denominator": 1},
            "numerator",
            "at most",
        ),
    ],
)
def test_a_bad_field_is_named_with_what_was_sent(
    record: dict[str, Any], field: str, words: str
) -> None:
    error = one([record])
    assert error["field"] == field
    assert words in error["message"]
    assert error["row"] == 0 and error["line"] is None


def test_the_value_sent_is_repeated_and_cut_when_long() -> None:
    error = one([{"metric": "wait-minutes", "date": "2026-05-15", "value": "x" * 5000}])
    assert error["value"].startswith("xxx") and len(error["value"]) < 120
    assert len(error["message"]) < 200


def test_unknown_keys_are_bounded_in_the_problem() -> None:
    record = {"metric": "wait-minutes", "date": "2026-05-15", "value": 1, "k" * 10_000: "v"}
    error = one([record])
    assert error["message"] == "unknown field" and len(error["field"]) <= 100


def test_duplicates_are_reported_in_linear_time_and_bounded() -> None:
    """Issue 9 item 2: 100,000 identical rows once took 24 GB; the message was rebuilt per row."""
    rows = [{"metric": "wait-minutes", "date": "2026-05-15", "value": 1}] * 100_000
    started = time.process_time()
    _, errors = validate(Parsed(rows, False), METRICS, TODAY)
    assert time.process_time() - started < 5  # quadratic took minutes; this is a smoke bound
    assert errors.count == 100_000 and errors.truncated
    assert len(errors.items) == MAX_ERRORS
    assert [e["row"] for e in errors.items[:3]] == [0, 1, 2]
    assert "rows 0, 1, 2, 3, 4 and 99995 more" in errors.items[0]["message"]
    assert len(orjson.dumps(errors.items)) < 1_000_000


def test_both_records_of_a_duplicate_pair_are_listed() -> None:
    rows = [
        {"metric": "wait-minutes", "date": "2026-05-15", "value": 1},
        {"metric": "wait-minutes", "date": "2026-05-14", "value": 1},
        {"metric": "wait-minutes", "date": "2026-05-15", "value": 2},
    ]
    errors = check(rows)
    assert [(e["row"], e["field"]) for e in errors] == [(0, "date"), (2, "date")]
    assert "rows 0, 2" in errors[0]["message"] and errors[0]["value"] == "2026-05-15"


def test_many_bad_rows_keep_the_first_thousand_and_count_all() -> None:
    rows = [{"metric": "wait-minutes", "date": "bad", "value": -1}] * 3000
    _, errors = validate(Parsed(rows, False), METRICS, TODAY)
    assert errors.count == 6000 and errors.bad_rows == 3000
    assert len(errors.items) == MAX_ERRORS and errors.items[-1]["row"] == 499


def test_csv_errors_carry_the_physical_line() -> None:
    body = (
        b"metric,date,value,numerator,denominator\r\n"
        b"wait-minutes,2026-05-15,1,,\r\n"
        b"\r\n"  # a blank line is skipped but still a line of the file
        b'wait-minutes,2026-05-16,"not\r\na number",,\r\n'
        b"wait-minutes,2026-05-17,oops,,\r\n"
        b"wait-minutes,2026-05-18\r\n"
    )
    parsed = parse_csv(body)
    _, errors = validate(parsed, METRICS, TODAY)
    assert [(e["row"], e["line"], e["field"]) for e in errors.items] == [
        (1, 4, "value"),
        (2, 6, "value"),
        (3, 7, "record"),
    ]


def test_non_utf8_names_the_byte_and_line() -> None:
    body = "metric,date,value,numerator,denominator\nwait-minutes,2026-05-15,1,,\ncaf\xe9".encode(
        "cp1252"
    )
    with pytest.raises(Unprocessable) as caught:
        parse_csv(body)
    assert "0xE9 on line 3" in caught.value.detail
    assert caught.value.errors and caught.value.errors[0]["line"] == 3


def test_a_semicolon_header_gets_a_hint() -> None:
    with pytest.raises(Unprocessable) as caught:
        parse_csv(b"metric;date;value;numerator;denominator\nwait-minutes;2026-05-15;1;;\n")
    assert "semicolons" in caught.value.detail


def test_deeply_nested_json_is_a_422_not_a_crash() -> None:
    """Issue 9 item 5: '['*2000 + ']'*2000 raised RecursionError (a 500)."""
    for depth in (2000, 100_000):
        with pytest.raises(Unprocessable):
            parse_json(b"[" * depth + b"]" * depth)
    with pytest.raises(Unprocessable):
        parse(b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json")
