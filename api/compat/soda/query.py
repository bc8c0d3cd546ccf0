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


def _select(
    dataset: Dataset, compiler: Compiler, items: list[Any] | None
) -> list[tuple[str, Typed, Any]]:
    """``(name, compiled, tree)`` for each output column; ``*`` is every dataset column."""
    if items is None:
        return [
            (c.name, Typed(c.expr, c.type), Tree("column", [Token("NAME", c.name)]))
            for c in dataset.columns
        ]
    out: list[tuple[str, Typed, Any]] = []
    for i, item in enumerate(items, start=1):
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


def q_filter(dataset: Dataset, text: str) -> Any:
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
    order: list[Any],
    selected: dict[str, Typed],
) -> tuple[list[Any], list[tuple[Any, bool]]]:
    """ORDER BY clauses plus the compiled ``(expression, descending)`` items."""
    clauses, items = [], []
    for item in order:
        if not isinstance(item, Tree):
            continue
        expr, *direction = item.children
        desc = bool(direction) and str(direction[0]).lower() == "desc"
        typed = Compiler(dataset, compiler.dialect, selected).compile(expr)
        if typed.is_literal:
            raise SoQLError("$order items must be columns or expressions, not literals.")
        clauses.append(typed.expr.desc().nulls_first() if desc else typed.expr.asc().nulls_last())
        items.append((typed.expr, desc))
    return clauses, items


def _key_order(dataset: Dataset, items: list[tuple[Any, bool]]) -> bool:
    """Ordered by the dataset's unique key, ascending (no $order, or exactly the key)."""
    if not items:
        return True
    exprs = [e for e, desc in items if not desc]
    return len(exprs) == len(items) == len(dataset.key) and all(
        e is k for e, k in zip(exprs, dataset.key, strict=True)
    )


def _where(dataset: Dataset, dialect: str, clauses: Clauses) -> list[Any]:
    where = [dataset.base_where] if dataset.base_where is not None else []
    if clauses.where is not None:
        typed = Compiler(dataset, dialect).compile(clauses.where)
        if typed.type != CHECKBOX:
            raise SoQLError(f"$where must be a condition, got a {typed.type} expression.")
        if typed.aggregate:
            raise SoQLError("Aggregates are not allowed in $where.")
        where.append(typed.expr if not typed.is_literal else literal(bool(typed.lit)))
    if clauses.q:
        where.append(q_filter(dataset, clauses.q))
    return where


@dataclass
class Clauses:
    """Parsed clauses: from SODA's ``$`` parameters or from one SQL SELECT."""

    select: list[Any] | None = None  # select_item trees; None is *
    where: Any = None
    order: list[Any] = field(default_factory=list)
    group: list[Any] = field(default_factory=list)
    q: str | None = None


def _items(parameter: str, params: dict[str, str]) -> list[Any]:
    text = params.get(parameter)
    return [c for c in parse(parameter, text).children if isinstance(c, Tree)] if text else []


def build(
    dataset: Dataset, dialect: str, params: dict[str, str], filters: list[tuple[str, str]]
) -> Query:
    """Compile a SODA request into a ``Query`` (raises SoQLError naming the problem)."""
    clauses = Clauses(
        select=_items("$select", params) if params.get("$select") else None,
        where=parse("$where", params["$where"]).children[0] if params.get("$where") else None,
        order=_items("$order", params),
        group=_items("$group", params),
        q=params.get("$q"),
    )
    limit = _int("$limit", params.get("$limit"), DEFAULT_LIMIT, MAX_LIMIT)
    return compile_query(
        dataset, dialect, clauses, filters, limit, _int("$offset", params.get("$offset"), 0)
    )


def compile_query(
    dataset: Dataset,
    dialect: str,
    clauses: Clauses,
    filters: list[tuple[str, str]],
    limit: int,
    offset: int,
) -> Query:
    """Compile parsed clauses over a dataset into a ``Query``."""
    compiler = Compiler(dataset, dialect)
    chosen = _select(dataset, compiler, clauses.select)
    aliases = {name: typed for name, typed, _ in chosen}
    where = _where(dataset, dialect, clauses) + _filters(dataset, filters)
    group_trees = clauses.group
    group_by = [Compiler(dataset, dialect, aliases).compile(t).expr for t in group_trees]
    aggregate = bool(group_trees) or any(t.aggregate for _, t, _ in chosen)
    if aggregate:
        for name, typed, tree in chosen:
            if not typed.aggregate and tree not in group_trees:
                raise SoQLError(
                    f"{name} must be an aggregate or appear in $group.", {"column": name}
                )
    order_by, order_items = _order(dataset, compiler, clauses.order, aliases)
    seekable = not aggregate and _key_order(dataset, order_items)
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
        limit=limit,
        offset=offset,
        seekable=seekable,
        aggregate=aggregate,
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
