"""The code's shape rules, checked (issue 15): short functions, one module for the stores."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 60  # lines per function in api/ and db/ (the generated migrations aside)


def python_files(*folders: str) -> list[Path]:
    return [
        p
        for folder in folders
        for p in sorted((ROOT / folder).rglob("*.py"))
        if "migrations" not in p.relative_to(ROOT).parts
    ]


def test_no_function_in_api_or_db_is_over_60_lines() -> None:
    long = []
    for path in python_files("api", "db"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LIMIT:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert long == []


def test_only_db_dialect_knows_the_stores_apart() -> None:
    """No module of api/ tests a dialect's name or opens the driver's connection itself:
    db/dialect.py is where SQLite and PostgreSQL differ."""
    pattern = re.compile(r"dialect\.name|driver_connection|== \"(sqlite|postgresql)\"")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in python_files("api")
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert found == []
