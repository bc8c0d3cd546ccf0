"""A SODA request's parameters as one parameterised SELECT over a dataset."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree
from sqlalchemy import DateTime, Select, and_, func, literal, or_, select, tuple_

from api.compat.datasets import CHECKBOX, TEXT, TIMESTAMP, Dataset
from api.compat.soda.soql import (
    NAME_PATTERN,
    Compiler,
    SoQLError,
    Typed,
    coerce,
    default_name,
    parse,
)

DEFAULT_LIMIT = 1000
MAX_LIMIT = 50_000
CLAUSES = ("$select", "$where", "$order", "$group", "$limit", "$offset", "$q")


@dataclass
class Query:
    """The compiled request: output fields, the statement pieces and whether it can seek."""

    names: list[str]
    types: list[str]
    columns: list[Any]
    where: list[Any]
    group_by: list[Any]
    order_by: list[Any]
    limit: int
    offset: int
    seekable: bool  # ordered by the dataset's unique key, ascending: offsets can seek
    aggregate: bool = False
    params: dict[str, str] = field(default_factory=dict)


def _int(name: str, raw: str | None, default: int, maximum: int | None = None) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SoQLError(f"{name} must be a whole number, got {raw!r}.", {name: raw}) from None
    if value < 0:
        raise SoQLError(f"{name} must not be negative.", {name: raw})
    if maximum is not None and value > maximum:
        raise SoQLError(f"{name} may be at most {maximum}; got {value}.", {name: raw})
    return value


def _select(dataset: Dataset, compiler: Compiler, text: str | None) -> list[tuple[str, Typed, Any]]:
    """``(name, compiled, tree)`` for each output column; ``*`` is every dataset column."""
    if text is None:
        return [
            (c.name, Typed(c.expr, c.type), Tree("column", [Token("NAME", c.name)]))
            for c in dataset.columns
        ]
    out: list[tuple[str, Typed, Any]] = []
    for i, item in enumerate(parse("$select", text).children, start=1):
        if not isinstance(item, Tree):
            continue
        if item.data == "select_all":
            out += _select(dataset, compiler, None)
            continue
        expr, *alias = item.children
        assert isinstance(expr, Tree)
        name = str(alias[0]) if alias else default_name(expr, i)
        if not NAME_PATTERN.match(name) or name.startswith(":"):
            raise SoQLError(f"Invalid column alias {name!r}.", {"alias": name})
        typed = compiler.compile(expr)
        if typed.is_literal:
            raise SoQLError("$select items must be columns or expressions over columns.")
        out.append((name, typed, expr))
    names = [n for n, _, _ in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SoQLError(f"Duplicate output column {duplicates[0]}: name it with AS.")
    return out


def _q_filter(dataset: Dataset, text: str) -> Any:
    """``$q``: every word appears (any case) in some text column."""
    words = text.lower().split()[:20]
    texts = [c.expr for c in dataset.columns if c.type == TEXT]
    conds = []
    for word in words:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = literal(f"%{escaped}%")
        conds.append(or_(*(func.lower(e).like(pattern, escape="\\") for e in texts)))
    return and_(*conds)


def _filters(dataset: Dataset, filters: Iterable[tuple[str, str]]) -> list[Any]:
    """Simple ``column=value`` filters, the value read as the column's type."""
    out = []
    for name, raw in filters:
        column = dataset.column(name)
        if column is None:
            known = ", ".join(c.name for c in dataset.columns)
            raise SoQLError(
                f"No such column: {name}. The columns of {dataset.id} are {known}.",
                {"column": name},
            )
        value = coerce(raw, column.type, name)
        if column.type == TIMESTAMP and not isinstance(column.expr.type, DateTime):
            value = value.date()  # a calendar-date column
        if column.type == CHECKBOX:
            out.append(column.expr.is_(value))
        else:
            out.append(column.expr == literal(value, type_=column.expr.type))
    return out


def _order(
    dataset: Dataset,
    compiler: Compiler,
    text: str | None,
    selected: dict[str, Typed],
) -> tuple[list[Any], list[tuple[Any, bool]]]:
    """ORDER BY clauses plus the parsed ``(tree, descending)`` items."""
    if not text:
        return [], []
    clauses, items = [], []
    for item in parse("$order", text).children:
        if not isinstance(item, Tree):
            continue
        expr, *direction = item.children
        desc = bool(direction) and str(direction[0]).lower() == "desc"
        typed = Compiler(dataset, compiler.dialect, selected).compile(expr)
        if typed.is_literal:
            raise SoQLError("$order items must be columns or expressions, not literals.")
        clauses.append(typed.expr.desc().nulls_first() if desc else typed.expr.asc().nulls_last())
        items.append((expr, desc))
    return clauses, items


def _where(dataset: Dataset, dialect: str, params: dict[str, str]) -> list[Any]:
    where = [dataset.base_where] if dataset.base_where is not None else []
    if params.get("$where"):
        tree = parse("$where", params["$where"]).children[0]
        typed = Compiler(dataset, dialect).compile(tree)
        if typed.type != CHECKBOX:
            raise SoQLError(f"$where must be a condition, got a {typed.type} expression.")
        if typed.aggregate:
            raise SoQLError("Aggregates are not allowed in $where.")
        where.append(typed.expr if not typed.is_literal else literal(bool(typed.lit)))
    if params.get("$q"):
        where.append(_q_filter(dataset, params["$q"]))
    return where


def build(
    dataset: Dataset, dialect: str, params: dict[str, str], filters: list[tuple[str, str]]
) -> Query:
    """Compile the request into a ``Query`` (raises SoQLError naming the problem)."""
    compiler = Compiler(dataset, dialect)
    chosen = _select(dataset, compiler, params.get("$select"))
    aliases = {name: typed for name, typed, _ in chosen}
    where = _where(dataset, dialect, params) + _filters(dataset, filters)
    group_trees = list(parse("$group", params["$group"]).children) if params.get("$group") else []
    group_by = [Compiler(dataset, dialect, aliases).compile(t).expr for t in group_trees]
    aggregate = bool(group_trees) or any(t.aggregate for _, t, _ in chosen)
    if aggregate:
        for name, typed, tree in chosen:
            if not typed.aggregate and tree not in group_trees:
                raise SoQLError(
                    f"{name} must be an aggregate or appear in $group.", {"column": name}
                )
    order_by, order_items = _order(dataset, compiler, params.get("$order"), aliases)
    seekable = not aggregate and not order_items
    if not aggregate:
        order_by += [k.asc() for k in dataset.key]  # the unique tie-breaker
    elif not order_by:
        order_by = [g.asc().nulls_last() for g in group_by]
    return Query(
        names=[n for n, _, _ in chosen],
        types=[t.type for _, t, _ in chosen],
        columns=[t.expr for _, t, _ in chosen],
        where=where,
        group_by=group_by,
        order_by=order_by,
        limit=_int("$limit", params.get("$limit"), DEFAULT_LIMIT, MAX_LIMIT),
        offset=_int("$offset", params.get("$offset"), 0),
        seekable=seekable,
        aggregate=aggregate,
        params=params,
    )


def statement(dataset: Dataset, query: Query, after: tuple[Any, ...] | None) -> Select[Any]:
    """The SELECT: output columns (then the key, for seeking), filtered, ordered, limited.

    With ``after`` (the key of the row just before ``offset``) the page starts by an
    index seek instead of counting ``offset`` rows.
    """
    extra = list(dataset.key) if query.seekable else []
    stmt = select(*[c.label(f"c{i}") for i, c in enumerate(query.columns)], *extra).select_from(
        dataset.from_
    )
    for cond in query.where:
        stmt = stmt.where(cond)
    if query.group_by:
        stmt = stmt.group_by(*query.group_by)
    if after is not None:
        stmt = stmt.where(tuple_(*dataset.key) > tuple_(*after))
    stmt = stmt.order_by(*query.order_by).limit(query.limit)
    if after is None and query.offset:
        stmt = stmt.offset(query.offset)
    return stmt
