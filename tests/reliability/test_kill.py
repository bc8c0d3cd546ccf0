"""SIGKILL the server mid-ingest, many times: every batch is wholly visible or not at all.

Each round posts a batch that rewrites the same days of one metric with a value unique to
the round, kills the server process at a random moment (seeded), starts it again, and checks
from the store and over HTTP that either everything of the batch is there (its receipt, all
its values, one revision per superseded value, moved ETags for values and scores) or nothing
is; and that a batch the client saw acknowledged is always there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from tests.live import REPORT, drop_database, free_port, load_demo, new_database

ROUNDS = int(os.environ.get("KILL_ROUNDS", "50"))  # per store: 100 kills in all
DAYS = 200
FORKSERVER = Path(__file__).resolve().parents[1] / "forkserver.py"


@dataclass
class Killable:
    database_url: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    child: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        env = {**os.environ, "DATABASE_URL": self.database_url, "RATE_LIMIT_ENABLED": "false"}
        self.proc = subprocess.Popen(
            [sys.executable, str(FORKSERVER), str(self.port)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def start(self) -> None:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write("start\n")
        self.proc.stdin.flush()
        self.child = int(self.proc.stdout.readline())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.02)
        raise RuntimeError("the forked server did not come up")

    def kill(self) -> None:
        os.kill(self.child, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the port is free again once the child is gone
            try:
                httpx.get(self.url + "/healthz", timeout=0.2)
            except httpx.HTTPError:
                return
            time.sleep(0.02)

    def close(self) -> None:
        if self.child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signal.SIGKILL)
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def killable(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Killable, dict[str, str], str]]:
    backend = str(request.param)
    server_url = request.getfixturevalue("postgresql_url") if backend == "postgresql" else ""
    url = new_database(backend, server_url, tmp_path_factory.mktemp(f"kill-{backend}"))
    keys = load_demo(url, metrics=23, years=2)
    server = Killable(url)
    server.open()
    try:
        yield server, keys, backend
    finally:
        server.close()
        drop_database(url)


def _state(engine: Engine, metric_id: int, key: str, first: dt.date) -> dict[str, Any]:
    with engine.connect() as conn:
        batch = conn.execute(
            text(
                "SELECT id, received, updated, created FROM ingest_batches "
                "WHERE idempotency_key = :k"
            ),
            {"k": key},
        ).first()
        span = {"m": metric_id, "a": first, "b": first + dt.timedelta(days=DAYS - 1)}
        values: dict[float, int] = dict(
            conn.execute(
                text(
                    "SELECT value, count(*) FROM metric_values WHERE metric_id = :m "
                    "AND date BETWEEN :a AND :b GROUP BY value"
                ),
                span,
            ).all()
        )
        revisions = conn.execute(
            text(
                "SELECT count(*) FROM value_revisions WHERE metric_id = :m "
                "AND date BETWEEN :a AND :b"
            ),
            span,
        ).scalar_one()
    return {"batch": batch, "values": values, "revisions": int(revisions)}


def _post(server: Killable, token: str, body: list[dict[str, Any]], key: str, out: dict) -> None:
    try:
        r = httpx.post(
            server.url + "/v1/ingest/values",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            timeout=30,
        )
        out["status"], out["receipt"] = r.status_code, r.json()
    except (httpx.HTTPError, ValueError) as exc:
        out["error"] = repr(exc)


def _etags(server: Killable, slug: str) -> tuple[str, str]:
    a = httpx.get(server.url + f"/v1/values?metric={slug}", timeout=30).headers["etag"]
    b = httpx.get(server.url + f"/v1/metrics/{slug}/scores", timeout=30).headers["etag"]
    return a, b


def test_sigkill_mid_ingest_is_all_or_nothing(
    killable: tuple[Killable, dict[str, str], str],
) -> None:
    server, keys, backend = killable
    server.start()
    metric = httpx.get(server.url + "/v1/metrics?department=311&limit=1").json()["data"][0]
    slug, ratio = metric["slug"], metric["aggregation"] in ("pooled_ratio", "mean_of_ratios")
    engine = create_engine(server.database_url)
    with engine.connect() as conn:
        metric_id = conn.execute(text("SELECT id FROM metrics WHERE slug = :s"), {"s": slug})
        metric_id = metric_id.scalar_one()
    first = dt.date.today() - dt.timedelta(days=DAYS + 30)
    rng = random.Random(f"kill-{backend}")
    stats = {"kills": 0, "committed": 0, "rolled back": 0, "acknowledged": 0}
    before = _state(engine, metric_id, "none", first)
    etags = _etags(server, slug)
    for round_ in range(ROUNDS):
        key = f"kill-{round_}"
        mark = 1000.0 + round_
        rows = [
            {"metric": slug, "date": (first + dt.timedelta(days=d)).isoformat()}
            | ({"numerator": mark, "denominator": 1.0} if ratio else {"value": mark})
            for d in range(DAYS)
        ]
        out: dict[str, Any] = {}
        thread = threading.Thread(target=_post, args=(server, keys["dept"], rows, key, out))
        thread.start()
        time.sleep(rng.uniform(0.0, 0.35))
        server.kill()
        stats["kills"] += 1
        thread.join(30)
        server.start()
        after = _state(engine, metric_id, key, first)
        new_etags = _etags(server, slug)
        if after["batch"] is not None:
            stats["committed"] += 1
            assert after["values"] == {mark: DAYS}, (round_, after["values"])
            assert after["revisions"] == before["revisions"] + DAYS
            assert new_etags[0] != etags[0] and new_etags[1] != etags[1]
        else:
            stats["rolled back"] += 1
            assert out.get("status") != 200, f"round {round_}: acknowledged but lost"
            assert after["values"] == before["values"] and after["revisions"] == before["revisions"]
            assert new_etags == etags
        if out.get("status") == 200:
            stats["acknowledged"] += 1
            assert out["receipt"]["batch"] == after["batch"].id
        before, etags = after, new_etags
    engine.dispose()
    for what, n in stats.items():
        REPORT.setdefault(f"sigkill {what}", {})[backend] = n
    assert stats["committed"] and stats["rolled back"], stats  # both outcomes were exercised
