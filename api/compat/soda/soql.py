"""SoQL: parse ``$select``, ``$where``, ``$order`` and ``$group`` with a Lark grammar
(``soql.lark``) and compile the trees into parameterised SQLAlchemy expressions.

Nothing from the query string is pasted into SQL: names resolve only through the dataset's
column whitelist, function names through ``FUNCTIONS``, and every literal becomes a bound
parameter typed like the column it meets.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput
from sqlalchemy import Date, DateTime, Float, String, and_, false, func, literal, not_, or_, true

from api.compat.datasets import CHECKBOX, NUMBER, TEXT, TIMESTAMP, Dataset
from db.dialect import is_postgres

PARSER = Lark(
    (Path(__file__).parent / "soql.lark").read_text(),
    parser="lalr",
    start=["start_select", "start_where", "start_order", "start_group", "start_sql"],
    maybe_placeholders=False,
)
# The compiler (and SQLAlchemy's) recurse once per level: deeper clauses are refused before
# they reach Python's recursion limit. Real queries nest a few levels; a long OR chain of
# one column is what in(...) is for.
MAX_DEPTH = 100
AGGREGATES = {"count", "sum", "avg", "min", "max"}
FUNCTIONS = AGGREGATES | {"upper", "lower"}


class SoQLError(ValueError):
    """A query the subset does not accept; ``data`` says where (SODA's error ``data``)."""

    def __init__(self, message: str, data: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.data = data or {}


def parse(parameter: str, text: str) -> Tree:
    """Parse one SoQL clause (``$select``, ``$where``, ``$order`` or ``$group``)."""
    if len(text) > 4000:
        raise SoQLError(f"{parameter} is longer than 4000 characters.", {"parameter": parameter})
    try:
        tree = PARSER.parse(text, start="start_" + parameter.lstrip("$"))
    except UnexpectedInput as exc:
        found = (
            repr(text[exc.pos_in_stream])
            if isinstance(exc, UnexpectedCharacters) and exc.pos_in_stream is not None
            else getattr(getattr(exc, "token", None), "type", "$END")
        )
        found = "end of input" if found == "$END" else found
        raise SoQLError(
            f"Could not parse {parameter}: unexpected {found} at line {exc.line}, "
            f"column {exc.column}.",
            {"parameter": parameter, "query": text, "line": exc.line, "column": exc.column},
        ) from None
    except LarkError as exc:
        raise SoQLError(f"Could not parse {parameter}: {exc}", {"parameter": parameter}) from None
    _check_depth(parameter, tree)
    return tree


def _check_depth(parameter: str, tree: Tree) -> None:
    """Refuse a clause nested deeper than ``MAX_DEPTH`` (walked without recursion)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SoQLError(
                f"{parameter} is nested more than {MAX_DEPTH} levels deep; "
                "for a long list of alternatives use in(...).",
                {"parameter": parameter, "max_depth": MAX_DEPTH},
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


@dataclass(frozen=True)
class Typed:
    """A compiled expression with its SODA type; ``lit`` holds a literal not yet bound."""

    expr: Any
    type: str
    aggregate: bool = False
    lit: Any = None
    is_literal: bool = False


def _literal(value: Any, kind: str) -> Typed:
    return Typed(None, kind, lit=value, is_literal=True)


def parse_timestamp(text: str) -> dt.datetime:
    """A SoQL floating timestamp literal: ``2026-05-15`` or ``2026-05-15T00:00:00[.000]``."""
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SoQLError(
            f"'{text}' is not a floating timestamp (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss.sss)."
        ) from None


def coerce(value: Any, kind: str, column: str = "") -> Any:
    """A literal as a Python value of ``kind`` (SoQL lets strings stand for numbers and dates)."""
    where = f" for {column}" if column else ""
    if kind == TEXT:
        if isinstance(value, str):
            return value
        raise SoQLError(f"Type mismatch{where}: expected text, got number {value!r}.")
    if kind == NUMBER:
        if isinstance(value, bool):
            raise SoQLError(f"Type mismatch{where}: expected a number, got a boolean.")
        try:
            number = float(value)
        except ValueError:
            raise SoQLError(f"Type mismatch{where}: {value!r} is not a number.") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise SoQLError(f"Type mismatch{where}: {value!r} is not a finite number.")
        return number
    if kind == TIMESTAMP:
        if not isinstance(value, str):
            raise SoQLError(f"Type mismatch{where}: expected a floating timestamp string.")
        return parse_timestamp(value)
    if kind == CHECKBOX:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise SoQLError(f"Type mismatch{where}: expected true or false, got {value!r}.")
    raise SoQLError(f"Unknown type {kind}.")


def _bind(t: Typed, kind: str, sa_type: Any = None) -> Any:
    if not t.is_literal:
        return t.expr
    value = coerce(t.lit, kind)
    if kind == TIMESTAMP and isinstance(sa_type, Date) and not isinstance(sa_type, DateTime):
        return literal(value.date(), type_=Date())
    types = {TEXT: String(), NUMBER: Float(), TIMESTAMP: DateTime(), CHECKBOX: None}
    if kind == CHECKBOX:
        return true() if value else false()
    return literal(value, type_=sa_type if sa_type is not None else types[kind])


def _is_date_column(t: Typed) -> bool:
    return (
        not t.is_literal
        and t.type == TIMESTAMP
        and isinstance(getattr(t.expr, "type", None), Date)
        and not isinstance(t.expr.type, DateTime)
    )


_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}


def _date_compare(op: str, column: Any, moment: dt.datetime) -> Any:
    """Compare a calendar-date column (midnight of that day) with a floating timestamp."""
    day = moment.date()
    if moment.time() == dt.time():
        return _apply(op, column, literal(day, type_=Date()))
    bound = literal(day, type_=Date())
    # midnight of `day` < moment < midnight of the next day
    return {
        "=": false(),
        "!=": true(),
        "<": column <= bound,
        "<=": column <= bound,
        ">": column > bound,
        ">=": column > bound,
    }[op]


def _apply(op: str, left: Any, right: Any) -> Any:
    return {
        "=": lambda: left == right,
        "!=": lambda: left != right,
        "<": lambda: left < right,
        "<=": lambda: left <= right,
        ">": lambda: left > right,
        ">=": lambda: left >= right,
    }[op]()


def _glob(pattern: str) -> str:
    """A LIKE pattern as an SQLite GLOB (case-sensitive, as LIKE is on PostgreSQL)."""
    out = []
    for ch in pattern:
        out.append({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(ch, ch))
    return "".join(out)


class Compiler:
    """Turns parse trees into typed SQLAlchemy expressions over one dataset."""

    def __init__(self, dataset: Dataset, dialect: str, aliases: dict[str, Typed] | None = None):
        self.dataset = dataset
        self.dialect = dialect
        self.aliases = aliases or {}

    def compile(self, node: Tree | Token) -> Typed:
        if isinstance(node, Token):
            raise SoQLError(f"Unexpected {node!s}.")
        handler = getattr(self, "_" + str(node.data), None)
        if handler is None:
            raise SoQLError(f"Unsupported expression {node.data}.")
        result: Typed = handler(*node.children)
        return result

    def boolean(self, node: Tree | Token) -> Any:
        t = self.compile(node)
        if t.type != CHECKBOX:
            raise SoQLError(f"Expected a condition (true/false), got a {t.type} expression.")
        return _bind(t, CHECKBOX)

    # --- atoms -----------------------------------------------------------------------------

    def _number(self, token: Token) -> Typed:
        return _literal(float(token), NUMBER)

    def _string(self, token: Token) -> Typed:
        return _literal(str(token)[1:-1].replace("''", "'"), TEXT)

    def _true(self, _token: Token) -> Typed:
        return _literal(True, CHECKBOX)

    def _false(self, _token: Token) -> Typed:
        return _literal(False, CHECKBOX)

    def _column(self, token: Token) -> Typed:
        name = str(token).strip('`"')
        column = self.dataset.column(name)
        if column is None:
            if name in self.aliases:
                return self.aliases[name]
            known = ", ".join(c.name for c in self.dataset.columns)
            raise SoQLError(
                f"No such column: {name}. The columns of {self.dataset.id} are {known}.",
                {"column": name},
            )
        return Typed(column.expr, column.type)

    def _neg(self, operand: Tree) -> Typed:
        t = self.compile(operand)
        if t.type != NUMBER:
            raise SoQLError("Unary minus needs a number.")
        if t.is_literal:
            return _literal(-coerce(t.lit, NUMBER), NUMBER)
        return Typed(-t.expr, NUMBER, t.aggregate)

    def _arith(self, left: Tree, op: Token, right: Tree) -> Typed:
        a, b = self.compile(left), self.compile(right)
        for side in (a, b):
            if side.type != NUMBER and not (side.is_literal and side.type == TEXT):
                raise SoQLError(f"Arithmetic '{op}' needs numbers, got {side.type}.")
        x, y = _bind(a, NUMBER), _bind(b, NUMBER)
        expr = {"+": x + y, "-": x - y, "*": x * y, "/": x / func.nullif(y, 0)}[str(op)]
        return Typed(expr, NUMBER, a.aggregate or b.aggregate)

    def _call_star(self, name: Token) -> Typed:
        if str(name).lower() != "count":
            raise SoQLError(f"Only count(*) takes '*', not {name}(*).")
        return Typed(func.count(), NUMBER, aggregate=True)

    def _call(self, name: Token, *args: Tree) -> Typed:
        fname = str(name).lower()
        if fname not in FUNCTIONS:
            raise SoQLError(
                f"Unknown function {name}(). Supported: {', '.join(sorted(FUNCTIONS))}.",
                {"function": str(name)},
            )
        if len(args) != 1:
            raise SoQLError(f"{fname}() takes exactly one argument.")
        arg = self.compile(args[0])
        if arg.aggregate and fname in AGGREGATES:
            raise SoQLError(f"Aggregates cannot be nested: {fname}() of an aggregate.")
        if fname == "count":
            return Typed(func.count(_bind(arg, arg.type)), NUMBER, aggregate=True)
        if fname in ("sum", "avg"):
            if arg.type != NUMBER:
                raise SoQLError(f"{fname}() needs a number column, got {arg.type}.")
            return Typed(getattr(func, fname)(_bind(arg, NUMBER), type_=Float()), NUMBER, True)
        if fname in ("min", "max"):
            expr = _bind(arg, arg.type)
            return Typed(getattr(func, fname)(expr, type_=expr.type), arg.type, True)
        if arg.type != TEXT:
            raise SoQLError(f"{fname}() needs text, got {arg.type}.")
        return Typed(getattr(func, fname)(_bind(arg, TEXT), type_=String()), TEXT, arg.aggregate)

    # --- conditions ------------------------------------------------------------------------

    def _pair(self, left: Tree, right: Tree) -> tuple[Typed, Typed, str]:
        a, b = self.compile(left), self.compile(right)
        kind = b.type if a.is_literal and not b.is_literal else a.type
        if a.is_literal and b.is_literal:
            kind = a.type if a.type == b.type else NUMBER
        for side in (a, b):
            if not side.is_literal and side.type != kind:
                raise SoQLError(f"Type mismatch: cannot compare {a.type} with {b.type}.")
        return a, b, kind

    def _compare(self, left: Tree, op_token: Token, right: Tree) -> Typed:
        op = "!=" if str(op_token) == "<>" else str(op_token)
        a, b, kind = self._pair(left, right)
        if kind == CHECKBOX and op not in ("=", "!="):
            raise SoQLError(f"Booleans compare only with = and !=, not {op}.")
        aggregate = a.aggregate or b.aggregate
        if _is_date_column(a) and b.is_literal:
            return Typed(_date_compare(op, a.expr, coerce(b.lit, TIMESTAMP)), CHECKBOX, aggregate)
        if _is_date_column(b) and a.is_literal:
            moment = coerce(a.lit, TIMESTAMP)
            return Typed(_date_compare(_FLIP[op], b.expr, moment), CHECKBOX, aggregate)
        sa_type = getattr(a.expr if not a.is_literal else b.expr, "type", None)
        return Typed(
            _apply(op, _bind(a, kind, sa_type), _bind(b, kind, sa_type)), CHECKBOX, aggregate
        )

    def _between(self, *children: Any) -> Typed:
        negate = isinstance(children[1], Token)
        value, low, high = [c for c in children if isinstance(c, Tree)]
        lower = self._compare(value, Token("COMPARATOR", ">="), low)
        upper = self._compare(value, Token("COMPARATOR", "<="), high)
        cond = and_(lower.expr, upper.expr)
        return Typed(not_(cond) if negate else cond, CHECKBOX, lower.aggregate)

    def _in_(self, *children: Any) -> Typed:
        negate = isinstance(children[1], Token)
        value, *items = [c for c in children if isinstance(c, Tree)]
        if len(items) > 1000:
            raise SoQLError("in(...) takes at most 1000 values.")
        parts = [self._compare(value, Token("COMPARATOR", "="), item).expr for item in items]
        cond = or_(*parts)
        return Typed(not_(cond) if negate else cond, CHECKBOX)

    def _is_null(self, value: Tree, *negate: Token) -> Typed:
        t = self.compile(value)
        if t.is_literal:
            raise SoQLError("IS NULL needs a column or expression, not a literal.")
        return Typed(t.expr.isnot(None) if negate else t.expr.is_(None), CHECKBOX, t.aggregate)

    def _like(self, *children: Any) -> Typed:
        negate = isinstance(children[1], Token)
        value, pattern = [c for c in children if isinstance(c, Tree)]
        t, p = self.compile(value), self.compile(pattern)
        if t.type != TEXT or t.is_literal:
            raise SoQLError("like needs a text column on its left.")
        if not (p.is_literal and p.type == TEXT):
            raise SoQLError("like needs a string literal pattern, e.g. '%on-time%'.")
        if not is_postgres(self.dialect):
            cond = t.expr.op("GLOB")(literal(_glob(p.lit), type_=String()))
        else:
            cond = t.expr.like(literal(p.lit, type_=String()))
        return Typed(not_(cond) if negate else cond, CHECKBOX, t.aggregate)

    def _not_(self, operand: Tree) -> Typed:
        return Typed(not_(self.boolean(operand)), CHECKBOX)

    def _and_(self, left: Tree, right: Tree) -> Typed:
        return Typed(and_(self.boolean(left), self.boolean(right)), CHECKBOX)

    def _or_(self, left: Tree, right: Tree) -> Typed:
        return Typed(or_(self.boolean(left), self.boolean(right)), CHECKBOX)


def default_name(node: Tree, position: int) -> str:
    """The output name Socrata gives an unaliased select expression."""
    if node.data == "column":
        return str(node.children[0]).strip('`"')
    if node.data == "call_star":
        return str(node.children[0]).lower()
    if node.data == "call" and len(node.children) == 2 and isinstance(node.children[1], Tree):
        inner = node.children[1]
        if inner.data == "column":
            return f"{str(node.children[0]).lower()}_{str(inner.children[0]).strip('`')}"
    return f"expr_{position}"


NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*$", re.I)
