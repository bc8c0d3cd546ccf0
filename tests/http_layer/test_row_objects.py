"""``respond.row_objects``: a page's rows as JSON objects, the same as ``dict(zip(...))``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.http.respond import row_objects

names = st.lists(st.text(max_size=12), max_size=10, unique=True).map(tuple)
cells = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))


@given(names, st.data())
def test_the_same_objects_as_zipping_names_and_cells(
    columns: tuple[str, ...], data: st.DataObject
) -> None:
    # Any name (quotes, backslashes, braces, newlines) is a literal key; cells after the
    # published columns (a keyset key) are left out.
    extra = data.draw(st.integers(0, 2))
    row = tuple(data.draw(cells) for _ in range(len(columns) + extra))
    made = row_objects(columns)(row)
    assert made == dict(zip(columns, row, strict=False))
    assert list(made) == list(columns)


def test_a_column_name_cannot_inject_code() -> None:
    evil = ("x']} or __import__('os').system('false') or {'y",)
    assert row_objects(evil)(("cell",)) == {evil[0]: "cell"}


def test_names_must_be_text() -> None:
    with pytest.raises(TypeError):
        row_objects((1,))
