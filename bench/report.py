"""What a benchmark run prints and writes: progress lines, result rows, bench/results.md."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.processes import DATASETTE, ROOT, pg_exec


def log(message: str = "") -> None:
    print(message, flush=True)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    log(f"\n== {name}")
    began = time.perf_counter()
    try:
        yield
    finally:
        log(f"   [{name}: {time.perf_counter() - began:.1f} s]")


@dataclass
class Row:
    measure: str
    ours: str
    anchor: str
    ratio: str
    target: str
    met: str


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(Row(*cells))

    def note(self, line: str) -> None:
        log("   " + line)
        self.details.append(line)


def fmt(x: float | None, unit: str = "", digits: int = 0) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}{unit}"


def ratio(ours: float | None, anchor: float | None) -> float | None:
    if ours is None or anchor is None or anchor == 0:
        return None
    return ours / anchor


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def sh(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.rstrip()
    except (OSError, subprocess.SubprocessError):
        return "n/a"


def machine(pg_url: str | None) -> list[str]:
    cpu = "n/a"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pg = "n/a"
    if pg_url:
        with contextlib.suppress(Exception):
            pg = str(pg_exec(pg_url, "SELECT version()", dbname="postgres")[0][0])
    commit = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    status = sh(["git", "-C", str(ROOT), "status", "--porcelain"])
    changed = [
        line
        for line in status.splitlines()
        if not line.endswith("bench/results.md")  # (this file, rewritten by every run)
    ]
    tree = f"{len(changed)} uncommitted change(s)" if changed else "no uncommitted changes"
    if status == "n/a":
        tree = "tree state unknown"
    load = os.getloadavg()[0]
    return [
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; commit {commit}, {tree}",
        f"- CPU: {sh(['nproc'])} cores ({cpu}); load average before the run: {load:.2f}",
        "- Memory (`free -g`):\n\n```\n" + sh(["free", "-g"]) + "\n```\n",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
        f"{sh([DATASETTE, '--version'])}; httpx {httpx.__version__}",
        f"- PostgreSQL: {pg}",
    ]


def write_results(
    report: Report, args: argparse.Namespace, machine_lines: list[str], total: float
) -> str:
    out = [
        "# CityScore API benchmark results",
        "",
        f"Written by `bench/run.py` ({' '.join(sys.argv[1:]) or 'default scale'}): "
        f"{args.metrics} metrics x {args.years} years, load tests {args.duration:g} s each, "
        f"run took {total / 60:.1f} min. See `bench/README.md` for what each line measures.",
        "",
        "## Machine",
        "",
        *machine_lines,
        "",
        "## Results",
        "",
        "| measure | ours | anchor | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        out.append(f"| {r.measure} | {r.ours} | {r.anchor} | {r.ratio} | {r.target} | {r.met} |")
    out += ["", "## Absolute numbers and notes", ""]
    out += [f"- {line}" for line in report.details]
    out += ["", "## Phase times", ""]
    out += [f"- {line}" for line in report.phases]
    return "\n".join(out) + "\n"
