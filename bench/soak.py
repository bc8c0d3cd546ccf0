"""Soak test: mixed traffic at a fixed rate against PostgreSQL with several uvicorn workers.

    .venv/bin/python bench/soak.py [--duration 600] [--rate 20] [--workers 3] [--pg-url URL]

Recreates the PostgreSQL database ``--pg-url`` names, loads ``cityscore demo``, creates a
department key, starts ``cityscore serve --workers N`` on 127.0.0.1 (multiprocess metrics
on), then for ``--duration`` seconds starts one request every ``1/rate`` seconds (an open
model: a slow server does not slow the arrivals), cycling through every read kind, CSV
downloads read whole and CSV downloads dropped mid-stream, conditional GETs that must be
304, and ingest batches with the department key. It prints errors, p50 and p99 per route,
and the server's RSS over time with a verdict (flat or not). Exit code 1 when any request
failed (5xx, an unexpected status, a timeout) or RSS grew. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.processes import CITYSCORE, WORK, Server, descendants, pg_dbname, pg_exec, run_cli

DEFAULT_PG = "postgresql+psycopg://root@127.0.0.1:5432/soak_cityscore"
MAX_DURATION = 3600
MAX_IN_FLIGHT = 200
RSS_EVERY_S = 10.0


@dataclass
class Route:
    n: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@dataclass
class Context:
    client: httpx.AsyncClient
    key: str
    metric: str  # a metric of the key's department (ingest target)
    slugs: dict[str, list[str]]
    etags: dict[str, str] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=lambda: defaultdict(Route))


async def get(ctx: Context, label: str, url: str, expect: int = 200, **kw: Any) -> None:
    r = await ctx.client.get(url, **kw)
    check(r.status_code, expect, label, url)
    etag = r.headers.get("etag")
    if etag and r.status_code == 200:
        ctx.etags[url] = etag


def check(status: int, expect: int, label: str, url: str) -> None:
    if status != expect:
        raise AssertionError(f"{label}: {url} answered {status}, expected {expect}")


def pick(ctx: Context, kind: str) -> str:
    return random.choice(ctx.slugs[kind])


async def csv_whole(ctx: Context) -> None:
    async with ctx.client.stream("GET", "/v1/values.csv") as r:
        check(r.status_code, 200, "csv", "/v1/values.csv")
        size = 0
        async for chunk in r.aiter_raw():
            size += len(chunk)
        if size < 1000:
            raise AssertionError(f"csv: only {size} bytes")


async def csv_dropped(ctx: Context) -> None:
    """Read the first chunk of a big CSV, then close the connection mid-stream."""
    async with ctx.client.stream("GET", "/v1/values.csv?bom=true") as r:
        check(r.status_code, 200, "csv-drop", "/v1/values.csv")
        async for _chunk in r.aiter_raw():
            break  # leaving the block closes this connection with the body unread


# Ingest never changes these, so a revalidation must be 304; the others may legitimately
# answer 200 with a new ETag when a batch landed in between.
STABLE = ("/v1/departments", "/v1/analyses")


async def conditional(ctx: Context) -> None:
    url = random.choice(list(ctx.etags)) if ctx.etags else "/v1/departments"
    if url not in ctx.etags:
        await get(ctx, "conditional-prime", url)
        return
    old = ctx.etags[url]
    r = await ctx.client.get(url, headers={"If-None-Match": old})
    if r.status_code == 304 or (
        r.status_code == 200 and not url.startswith(STABLE) and r.headers.get("etag") != old
    ):
        ctx.etags[url] = r.headers.get("etag") or old
        return
    check(r.status_code, 304, "conditional", url)


async def ingest(ctx: Context) -> None:
    day = dt.date(2025, 1, 1) + dt.timedelta(days=random.randrange(300))
    row = {"metric": ctx.metric, "date": day.isoformat(), "value": random.uniform(1, 100)}
    r = await ctx.client.post(
        "/v1/ingest/values",
        content=orjson.dumps([row]),
        headers={"Authorization": f"Bearer {ctx.key}", "Content-Type": "application/json"},
    )
    if r.status_code == 422 and "numerator" in r.text:  # a ratio metric: send a ratio
        row = {k: v for k, v in row.items() if k != "value"} | {"numerator": 3, "denominator": 4}
        r = await ctx.client.post(
            "/v1/ingest/values",
            content=orjson.dumps([row]),
            headers={"Authorization": f"Bearer {ctx.key}", "Content-Type": "application/json"},
        )
    check(r.status_code, 200, "ingest", "/v1/ingest/values")


def kinds() -> dict[str, Callable[[Context], Any]]:
    """Every traffic kind, by the route label it is reported under."""
    m, d, a = "metrics", "departments", "analyses"
    return {
        "GET /v1/departments": lambda c: get(c, "departments", "/v1/departments"),
        "GET /v1/departments/{slug}": lambda c: get(c, "d", f"/v1/departments/{pick(c, d)}"),
        "GET /v1/metrics": lambda c: get(c, "metrics", "/v1/metrics?in_cityscore=true"),
        "GET /v1/metrics/{slug}": lambda c: get(c, "metric", f"/v1/metrics/{pick(c, m)}"),
        "GET /v1/metrics/{slug}/values": lambda c: get(
            c, "values", f"/v1/metrics/{pick(c, m)}/values?interval=week&start=2025-01-01"
        ),
        "GET /v1/metrics/{slug}/scores": lambda c: get(
            c, "scores", f"/v1/metrics/{pick(c, m)}/scores"
        ),
        "GET /v1/metrics/{slug}/values/{date}/revisions": lambda c: get(
            c, "revisions", f"/v1/metrics/{pick(c, m)}/values/2025-03-03/revisions"
        ),
        "GET /v1/values": lambda c: get(c, "bulk", f"/v1/values?metric={pick(c, m)}&limit=500"),
        "GET /v1/cityscore": lambda c: get(c, "cityscore", "/v1/cityscore"),
        "GET /v1/cityscore.csv": lambda c: get(c, "cityscore.csv", "/v1/cityscore.csv"),
        "GET /v1/cityscore/history": lambda c: get(c, "history", "/v1/cityscore/history"),
        "GET /v1/scorecards": lambda c: get(c, "scorecards", "/v1/scorecards"),
        "GET /v1/scorecards/{department}": lambda c: get(
            c, "scorecard", f"/v1/scorecards/{pick(c, d)}"
        ),
        "GET /v1/analyses": lambda c: get(c, "analyses", "/v1/analyses"),
        "GET /v1/analyses/{slug}": lambda c: get(c, "analysis", f"/v1/analyses/{pick(c, a)}"),
        "GET /v1/values.csv (whole)": csv_whole,
        "GET /v1/values.csv (dropped)": csv_dropped,
        "GET 304 (If-None-Match)": conditional,
        "POST /v1/ingest/values": ingest,
        "GET /healthz": lambda c: get(c, "healthz", "/healthz"),
    }


# Read kinds other parts of the service may serve (pages, interoperability, feeds): each is
# driven when the server answers its first request with 200, else listed as not served.
OPTIONAL: dict[str, Callable[[Context], str]] = {
    "GET / (page)": lambda c: "/",
    "GET /metrics/{slug} (page)": lambda c: f"/metrics/{pick(c, 'metrics')}",
    "GET /departments/{slug} (page)": lambda c: f"/departments/{pick(c, 'departments')}",
    "GET /v1/metrics/{slug}/sparkline.svg": lambda c: (
        f"/v1/metrics/{pick(c, 'metrics')}/sparkline.svg"
    ),
    "GET /v1/analyses.atom": lambda c: "/v1/analyses.atom",
    "GET /v1/metrics/{slug}/revisions": lambda c: f"/v1/metrics/{pick(c, 'metrics')}/revisions",
    "GET /v1/cityscore/runs": lambda c: "/v1/cityscore/runs",
    "GET /resource/values.json (SODA)": lambda c: (
        f"/resource/values.json?metric={pick(c, 'metrics')}"
    ),
    "GET /api/3/action/package_show (CKAN)": lambda c: "/api/3/action/package_show?id=cityscore",
    "GET /data.json (DCAT)": lambda c: "/data.json",
    "GET /v1/datapackage.json": lambda c: "/v1/datapackage.json",
}


def _reader(label: str, url_of: Callable[[Context], str]) -> Callable[[Context], Any]:
    return lambda c: get(c, label, url_of(c))


async def optional_kinds(ctx: Context) -> dict[str, Callable[[Context], Any]]:
    found: dict[str, Callable[[Context], Any]] = {}
    missing = []
    for label, url_of in OPTIONAL.items():
        if (await ctx.client.get(url_of(ctx))).status_code == 200:
            found[label] = _reader(label, url_of)
        else:
            missing.append(label.split(" ", 1)[1])
    if missing:
        print(f"  not served here, left out: {', '.join(missing)}", flush=True)
    return found


async def one(ctx: Context, label: str, fn: Callable[[Context], Any]) -> None:
    route = ctx.routes[label]
    started = time.perf_counter()
    try:
        await asyncio.wait_for(fn(ctx), timeout=60)
    except Exception as exc:  # every failure is counted and sampled
        route.errors += 1
        if len(route.samples) < 3:
            route.samples.append(f"{type(exc).__name__}: {exc}"[:200])
    route.n += 1
    route.latencies.append(time.perf_counter() - started)


def rss_mb(root: int) -> tuple[float, list[float]]:
    """Total RSS of the server's process tree and of each process, in MB."""
    each = []
    for pid in descendants(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    each.append(int(line.split()[1]) / 1024)
    return sum(each), sorted(each, reverse=True)


async def drive(
    ctx: Context, server: Server, duration: float, rate: float, skip: list[str]
) -> list[tuple]:
    every = {**kinds(), **await optional_kinds(ctx)}
    table = [(k, fn) for k, fn in every.items() if not any(s in k for s in skip)]
    pending: set[asyncio.Task[None]] = set()
    rss: list[tuple[float, float, list[float]]] = []
    began = time.perf_counter()
    next_rss = 0.0
    i = 0
    while (now := time.perf_counter() - began) < duration:
        if now >= next_rss:
            total, each = rss_mb(server.proc.pid)
            rss.append((now, total, each))
            next_rss += RSS_EVERY_S
            if len(rss) % 6 == 1:
                print(
                    f"  t={now:5.0f} s  RSS {total:6.1f} MB  in flight {len(pending)}", flush=True
                )
        label, fn = table[i % len(table)]
        i += 1
        if len(pending) >= MAX_IN_FLIGHT:  # the server has stalled: count, do not pile on
            route = ctx.routes[label]
            route.n += 1
            route.errors += 1
            if len(route.samples) < 3:
                route.samples.append("not sent: too many requests in flight")
        else:
            task = asyncio.create_task(one(ctx, label, fn))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
    if pending:
        await asyncio.wait(pending, timeout=90)
    total, each = rss_mb(server.proc.pid)
    rss.append((time.perf_counter() - began, total, each))
    return rss


def setup(url: str, workers: int, port: int, prom: Path) -> tuple[Server, str, str]:
    name = pg_dbname(url)
    pg_exec(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', dbname="postgres")
    pg_exec(url, f'CREATE DATABASE "{name}"', dbname="postgres")
    env = {**os.environ, "DATABASE_URL": url, "RATE_LIMIT_ENABLED": "false"}
    env |= {"PROMETHEUS_MULTIPROC_DIR": str(prom), "DB_POOL_SIZE": "10"}
    run_cli([CITYSCORE, "db", "upgrade"], env)
    print("  " + run_cli([CITYSCORE, "demo"], env).strip().splitlines()[-1], flush=True)
    dept, metric = pg_exec(
        url,
        "SELECT d.slug, m.slug FROM metrics m JOIN departments d ON d.id = m.department_id "
        "WHERE m.aggregation IN ('sum', 'mean', 'median') ORDER BY m.slug LIMIT 1",
    )[0]
    out = run_cli([CITYSCORE, "keys", "create", "--department", dept, "--name", "soak"], env)
    args = [CITYSCORE, "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = Server("api-soak", [*args, "--workers", str(workers)], env, port)
    server.wait_ready("/readyz")
    return server, out.strip().splitlines()[-1], metric


def report(ctx: Context, rss: list[tuple], duration: float, rate: float, workers: int) -> bool:
    total = sum(r.n for r in ctx.routes.values())
    errors = sum(r.errors for r in ctx.routes.values())
    print(
        f"\n{total} requests in {duration:.0f} s at {rate:g}/s target "
        f"({total / duration:.1f}/s achieved), {workers} workers, {errors} errors\n"
    )
    print(f"{'route':48} {'n':>6} {'err':>5} {'p50 ms':>9} {'p99 ms':>9}")
    for label, r in sorted(ctx.routes.items()):
        print(f"{label:48} {r.n:6} {r.errors:5} {r.pct(50) * 1000:9.1f} {r.pct(99) * 1000:9.1f}")
        for sample in r.samples:
            print(f"    ! {sample}")
    print("\nserver RSS over time (MB, whole process tree; largest processes):")
    step = max(1, len(rss) // 12)
    for t, mb, each in rss[::step] + ([rss[-1]] if (len(rss) - 1) % step else []):
        print(f"  t={t:5.0f} s  {mb:7.1f}  [{', '.join(f'{e:.0f}' for e in each[:6])}]")
    settled = rss[len(rss) // 5 :] or rss  # after the first fifth (warm-up: caches, pools)
    first, last = settled[: max(1, len(settled) // 4)], settled[-max(1, len(settled) // 4) :]
    start_mb = sum(x[1] for x in first) / len(first)
    end_mb = sum(x[1] for x in last) / len(last)
    growth = (end_mb - start_mb) / start_mb if start_mb else 0.0
    flat = growth < 0.10
    verdict = "flat" if flat else "GROWING"
    print(f"  RSS {verdict}: {start_mb:.1f} MB -> {end_mb:.1f} MB ({growth:+.1%}) after warm-up")
    return errors == 0 and flat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds (max 3600)")
    parser.add_argument("--rate", type=float, default=20, help="requests started per second")
    parser.add_argument("--workers", type=int, default=3, help="uvicorn worker processes")
    parser.add_argument("--port", type=int, default=8560)
    parser.add_argument("--pg-url", default=os.environ.get("SOAK_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="TEXT",
        help="leave out the kinds whose label contains TEXT (repeatable), e.g. 'dropped'",
    )
    args = parser.parse_args()
    if not 1 <= args.duration <= MAX_DURATION or not 0 < args.rate <= 500:
        parser.error(f"--duration must be 1-{MAX_DURATION} s and --rate 0-500")
    random.seed(args.seed)
    WORK.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as prom:
        print(f"setting up {pg_dbname(args.pg_url)} and {args.workers} workers ...", flush=True)
        server, key, metric = setup(args.pg_url, args.workers, args.port, Path(prom))
        try:
            return asyncio.run(run(args, server, key, metric))
        finally:
            server.stop()


async def run(args: argparse.Namespace, server: Server, key: str, metric: str) -> int:
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=server.base, timeout=60, limits=limits) as client:
        slugs = {}
        for kind in ("departments", "metrics", "analyses"):
            data = (await client.get(f"/v1/{kind}")).json()["data"]
            slugs[kind] = [row["slug"] for row in data]
        ctx = Context(client, key, metric, slugs)
        print(f"driving {args.rate:g} req/s for {args.duration:.0f} s ...", flush=True)
        rss = await drive(ctx, server, args.duration, args.rate, args.skip)
        try:
            scrape = (await client.get("/internal/metrics", timeout=10)).text
        except httpx.HTTPError as exc:
            scrape = ""
            print(f"/internal/metrics did not answer: {type(exc).__name__}")
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in scrape.splitlines()
        if line.startswith("cityscore_http_requests_total{")
    )
    print(f"/internal/metrics (all workers): {served:.0f} requests counted")
    return 0 if report(ctx, rss, args.duration, args.rate, args.workers) else 1


if __name__ == "__main__":
    raise SystemExit(main())
