"""3. Ingest against COPY FROM (and a set-based upsert); 6b. one day's ingest + recompute."""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench.loading import Catalogue
from bench.processes import Server, create_key, pg_conninfo, pg_exec
from bench.report import Report, fmt, ratio, verdict


def ingest_rows(
    cat: Catalogue,
    metrics: list[tuple[int, str, str, str]],
    days: list[dt.date],
    rng: random.Random,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for day in days:
        for _id, slug, aggregation, _dept in metrics:
            if aggregation in ("pooled_ratio", "mean_of_ratios"):
                den = float(rng.randint(100, 1000))
                rows.append(
                    {
                        "metric": slug,
                        "date": day.isoformat(),
                        "numerator": float(rng.randint(0, int(den))),
                        "denominator": den,
                    }
                )
            else:
                rows.append(
                    {
                        "metric": slug,
                        "date": day.isoformat(),
                        "value": round(rng.uniform(1, 500), 3),
                    }
                )
    return rows


INGEST_ROW = "3. Ingest, PostgreSQL, 10,000-row batches (rows/s)"
INGEST_TARGET = ">= 0.5x COPY + upsert"


@dataclass
class Batches:
    """What the timed ingest batches did: rows, seconds, receipts and the bodies sent."""

    rows: int = 0
    seconds: float = 0.0
    count: int = 0
    receipts: list[str] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)


_CHECKPOINTS = (
    "SELECT checkpoints_timed + checkpoints_req, buffers_checkpoint, buffers_backend, "
    "checkpoint_sync_time FROM pg_stat_bgwriter"
)


def checkpoints(url: str) -> tuple[Any, ...]:
    """PostgreSQL's checkpoint counters (checkpoints, buffers they wrote, buffers backends
    wrote, ms spent in fsync): a write during a checkpoint pays full-page images and can
    wait on its syncs, which one slow batch on this machine's disk may show."""
    return tuple(pg_exec(url, _CHECKPOINTS)[0])


def checkpoint_note(before: tuple[Any, ...], after: tuple[Any, ...]) -> str:
    count, written, backend, sync_ms = (b - a for a, b in zip(before, after, strict=True))
    return (
        f"{count} checkpoint(s) during them ({written:,} buffers written by checkpoints, "
        f"{backend:,} by backends, {sync_ms / 1000:.2f} s in checkpoint fsyncs)"
    )


def largest_department(cat: Catalogue) -> tuple[str, list[tuple[int, str, str, str]]]:
    by_dept: dict[str, list[tuple[int, str, str, str]]] = {}
    for m in cat.metrics:
        by_dept.setdefault(m[3], []).append(m)
    return max(by_dept.items(), key=lambda kv: len(kv[1]))


def refused(report: Report, response: httpx.Response) -> None:
    """The row and note for an ingest the server did not accept."""
    status = response.status_code
    if status in (404, 405):
        report.note(f"ingest: POST /v1/ingest/values answered {status}: not available")
        ours = f"not available (HTTP {status})"
    else:
        report.note(f"ingest: HTTP {status}: {response.text[:300]}")
        ours = f"failed (HTTP {status})"
    report.add(INGEST_ROW, ours, "-", "-", INGEST_TARGET, "n/a")


def post_batches(
    api: Server,
    headers: dict[str, str],
    cat: Catalogue,
    metrics: list[Any],
    seconds: float,
    report: Report,
) -> Batches | None:
    """10,000-row batches on existing dates, newest first, for ``seconds`` (20 at most)."""
    days_per_batch = -(-10_000 // len(metrics))  # enough days for 10,000 rows
    rng = random.Random(time.time_ns())
    done, day = Batches(), cat.last
    with httpx.Client(timeout=httpx.Timeout(600.0)) as client:
        while (
            done.seconds < seconds
            and done.count < 20
            and day - dt.timedelta(days_per_batch) > cat.first
        ):
            days = [day - dt.timedelta(days=k) for k in range(days_per_batch)]
            day -= dt.timedelta(days=days_per_batch)
            rows = ingest_rows(cat, metrics, days, rng)[:10_000]
            body = orjson.dumps(rows)
            done.payloads.append(body)
            began = time.perf_counter()
            response = client.post(api.base + "/v1/ingest/values", content=body, headers=headers)
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                refused(report, response)
                return None
            done.count += 1
            done.rows += len(rows)
            done.seconds += elapsed
            done.times.append(elapsed)
            done.receipts.append(response.text[:200])
    return done


def ingest(api: Server, url: str, cat: Catalogue, report: Report, seconds: float) -> None:
    dept, metrics = largest_department(cat)
    key = create_key(url, "--department", dept)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    before = checkpoints(url)
    done = post_batches(api, headers, cat, metrics, seconds, report)
    if done is None:
        return
    ours = done.rows / done.seconds if done.seconds else None
    report.note(
        f"ingest: {done.count} batches of {done.rows // max(done.count, 1):,} rows for "
        f"department {dept} ({len(metrics)} metrics) in {done.seconds:.2f} s = {fmt(ours)} "
        f"rows/s (each: {', '.join(f'{t:.2f}' for t in done.times)} s; "
        f"{checkpoint_note(before, checkpoints(url))}); "
        f"last receipt {done.receipts[-1] if done.receipts else '-'}"
    )
    copy_rate, upsert_rate = copy_anchor(url, cat, done.payloads)
    report.note(
        "COPY FROM STDIN into an empty scratch copy of metric_values (best of 3): "
        f"{fmt(copy_rate)} rows/s"
    )
    report.note(
        "COPY into a temp table + INSERT .. ON CONFLICT DO UPDATE (all rows existing): "
        f"{fmt(upsert_rate)} rows/s"
    )
    r = ratio(ours, upsert_rate)
    report.add(
        "3. Ingest, PostgreSQL, 10,000-row batches, scores recomputed (rows/s)",
        fmt(ours),
        f"{fmt(upsert_rate)} (COPY into staging + upsert); {fmt(copy_rate)} (plain COPY)",
        fmt(r, "x", 2),
        INGEST_TARGET,
        verdict(None if r is None else r >= 0.5),
    )


def copy_anchor(
    url: str, cat: Catalogue, payloads: list[bytes]
) -> tuple[float | None, float | None]:
    """The same rows through COPY FROM STDIN into a scratch table (and as a set-based upsert)."""
    import psycopg

    ids = {slug: id_ for id_, slug, _a, _d in cat.metrics}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat()
    lines = []
    for body in payloads:
        for row in orjson.loads(body):
            value = row.get("value")
            num, den = row.get("numerator"), row.get("denominator")
            if value is None and den:
                value = num / den
            cells = [ids[row["metric"]], row["date"], value, num, den, "f", now]
            lines.append("\t".join("\\N" if c is None else str(c) for c in cells))
    data = ("\n".join(lines) + "\n").encode()
    n = len(lines)
    cols = "metric_id, date, value, numerator, denominator, deleted, updated_at"
    copy_s = upsert_s = float("inf")
    with psycopg.connect(pg_conninfo(url)) as conn:
        for _ in range(3):  # best of three: one COPY of 10,000 rows is short and noisy
            conn.execute("DROP TABLE IF EXISTS bench_copy_scratch")
            conn.execute("CREATE TABLE bench_copy_scratch (LIKE metric_values INCLUDING ALL)")
            conn.commit()
            began = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY bench_copy_scratch ({cols}) FROM STDIN") as cp,
            ):
                for i in range(0, len(data), 1 << 20):
                    cp.write(data[i : i + (1 << 20)])
            conn.commit()
            copy_s = min(copy_s, time.perf_counter() - began)
            began = time.perf_counter()
            conn.execute(
                "CREATE TEMP TABLE bench_stage (LIKE metric_values INCLUDING DEFAULTS) "
                "ON COMMIT DROP"
            )
            with conn.cursor() as cur, cur.copy(f"COPY bench_stage ({cols}) FROM STDIN") as cp:
                for i in range(0, len(data), 1 << 20):
                    cp.write(data[i : i + (1 << 20)])
            conn.execute(
                f"INSERT INTO bench_copy_scratch ({cols}) SELECT {cols} FROM bench_stage "
                "ON CONFLICT (metric_id, date) DO UPDATE SET value = excluded.value, "
                "numerator = excluded.numerator, denominator = excluded.denominator, "
                "updated_at = excluded.updated_at"
            )
            conn.commit()
            upsert_s = min(upsert_s, time.perf_counter() - began)
        conn.execute("DROP TABLE bench_copy_scratch")
        conn.commit()
    return (n / copy_s if copy_s else None), (n / upsert_s if upsert_s else None)


RECOMPUTE_POSTS = 3  # one-day batches; the line is their median, every time is noted


def _timed_posts(
    api: Server, cat: Catalogue, headers: dict[str, str]
) -> tuple[list[float], str, httpx.Response | None]:
    """Post the last day for every metric ``RECOMPUTE_POSTS`` times: (seconds of each post,
    the last receipt, the response that was not a 200, if one was).

    One client for the posts, built before the clock starts: ``httpx.post()`` builds a
    client (and its TLS context) per call, ~30 ms of the client's own time. No keep-alive,
    so each post still opens its own connection and may reach either worker."""
    rng = random.Random(time.time_ns())
    times: list[float] = []
    receipt = ""
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(timeout=600, limits=limits) as client:
        for _ in range(RECOMPUTE_POSTS):
            body = orjson.dumps(ingest_rows(cat, cat.metrics, [cat.last], rng))
            began = time.perf_counter()
            response = client.post(api.base + "/v1/ingest/values", content=body, headers=headers)
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                return times, receipt, response
            times.append(elapsed)
            receipt = response.text[:200]
    return times, receipt, None


def recompute(api: Server, url: str, cat: Catalogue, report: Report) -> None:
    """6b: the last day's value for every metric, posted ``RECOMPUTE_POSTS`` times (new
    random values each time, so every post changes every metric): one post's time is as
    much the host's as the code's on this 2-core machine, so the line is the median and the
    note lists them all."""
    key = create_key(url, "--admin")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    label = f"6b. Ingest one day for all {len(cat.metrics):,} metrics + score recompute, PG (s)"
    before = checkpoints(url)
    times, receipt, failed = _timed_posts(api, cat, headers)
    if failed is not None:
        status = failed.status_code
        if status in (404, 405):
            report.note(f"recompute: POST /v1/ingest/values answered {status}: not available")
            report.add(label, f"not available (HTTP {status})", "-", "-", "none set", "n/a")
        else:
            report.note(f"recompute: HTTP {status}: {failed.text[:300]}")
            report.add(label, f"failed (HTTP {status})", "-", "-", "none set", "n/a")
        return
    median = statistics.median(times)
    report.note(
        f"recompute: {len(cat.metrics)} rows for {cat.last}, {len(times)} posts in "
        f"{', '.join(f'{t:.2f}' for t in times)} s (median {median:.2f} s; "
        f"{checkpoint_note(before, checkpoints(url))}); last receipt {receipt}"
    )
    shown = f"{median:.2f} s (median of {len(times)}; max {max(times):.2f} s)"
    report.add(label, shown, "-", "-", "<= 0.5 s", verdict(median <= 0.5))
