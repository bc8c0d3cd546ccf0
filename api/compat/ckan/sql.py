"""``datastore_search_sql`` when the operator enables it (``CKAN_DATASTORE_SQL_ENABLED``).

Not arbitrary SQL: one ``SELECT ... FROM "daily-values" [WHERE] [GROUP BY] [ORDER BY] [LIMIT]
[OFFSET]`` parsed by the SoQL grammar (``start_sql``) and compiled like a SODA query, so the
same column whitelist and bound parameters apply. Anything else is a Validation Error.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from lark import Token, Tree
from sqlmodel import Session

from api.compat.ckan.resources import BY_ID
from api.compat.ckan.search import MAX_LIMIT, CkanError, invalid
from api.compat.datasets import CHECKBOX, NUMBER, TIMESTAMP, dataset
from api.compat.soda.query import Clauses, compile_query, statement
from api.compat.soda.soql import SoQLError, parse
from db.dialect import name as store_name

CKAN_TYPES = {NUMBER: "numeric", TIMESTAMP: "timestamp", CHECKBOX: "bool"}


def _clauses(tree: Tree) -> tuple[str, Clauses, int, int]:
    table = ""
    clauses = Clauses()
    limit, offset = MAX_LIMIT, 0
    for child in tree.children:
        if isinstance(child, Token):
            table = str(child).strip('"')
            continue
        parts = [c for c in child.children if isinstance(c, Tree)]
        if child.data == "sql_select":
            clauses.select = parts
        elif child.data == "sql_where":
            clauses.where = parts[0]
        elif child.data == "sql_group":
            clauses.group = parts
        elif child.data == "sql_order":
            clauses.order = parts
        elif child.data in ("sql_limit", "sql_offset"):
            number = float(str(child.children[0]))
            if number != int(number):
                raise SoQLError(f"{child.data[4:].upper()} must be a whole number.")
            if child.data == "sql_limit":
                limit = min(int(number), MAX_LIMIT)
            else:
                offset = int(number)
    return table, clauses, limit, offset


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def search_sql(session: Session, sql: Any, today: dt.date) -> dict[str, Any]:
    """Run one whitelisted SELECT; the result is CKAN's ``{sql, fields, records}``."""
    if not isinstance(sql, str) or not sql.strip():
        raise invalid("sql", "Missing value")
    try:
        table, clauses, limit, offset = _clauses(parse("sql", sql))
        resource = BY_ID.get(table)
        if resource is None:
            raise CkanError(404, "Not Found Error", f'Resource "{table}" was not found.')
        if resource.dataset is None:
            raise invalid("sql", f'"{table}" cannot be queried with SQL; use datastore_search')
        ds = dataset(resource.dataset, today)
        assert ds is not None
        dialect = store_name(session)
        query = compile_query(ds, dialect, clauses, [], limit, offset)
    except SoQLError as exc:
        raise invalid("sql", exc.message) from None
    query.seekable = False
    rows = session.execute(statement(ds, query, None)).all()
    return {
        "sql": sql,
        "fields": [
            {"id": n, "type": CKAN_TYPES.get(t, "text")}
            for n, t in zip(query.names, query.types, strict=True)
        ],
        "records": [{n: _cell(v) for n, v in zip(query.names, row, strict=True)} for row in rows],
    }
