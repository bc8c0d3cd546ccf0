"""Request ids, one JSON log line per request, and Prometheus series that move (both stores)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlmodel import Session

from alembic import command
from api.main import create_app
from api.observability import logs, metrics, request_id
from api.settings import Settings
from tests._data import admin_headers, department_headers, put_department, put_metric
from tests._live import live_server
from tests.conftest import alembic_config

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient | httpx.Client) -> Samples:
    r = client.get("/internal/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger=logs.ACCESS_LOGGER):
        yield caplog


def lines(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    return [vars(r) for r in records if r.name == logs.ACCESS_LOGGER]


def test_request_id_is_taken_when_safe_else_generated(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "req-2026.05:16/abc"})
    assert r.headers["x-request-id"] == "req-2026.05:16/abc"
    generated = set()
    for bad in (None, "", "a" * 129, "new\nline", "<script>", "sp ace", b"\xc3\xa9"):
        headers = {} if bad is None else {"X-Request-ID": bad}
        rid = client.get("/healthz", headers=headers).headers["x-request-id"]
        assert len(rid) == 32 and int(rid, 16) >= 0, rid
        generated.add(rid)
    assert len(generated) == 7
    assert request_id.from_header(b"a" * 128) == "a" * 128


def test_one_log_line_per_request_with_route_template_and_key_id(
    client: TestClient, session: Session, access_log: pytest.LogCaptureFixture
) -> None:
    admin = admin_headers(session)
    put_department(client, admin, "311")
    put_metric(client, admin, "calls-on-time", "311")
    access_log.clear()
    dept = department_headers(session, "311")
    client.get("/v1/metrics/calls-on-time", headers={"X-Request-ID": "one"})
    client.get("/v1/values.csv")
    client.get("/no/such/page")
    row = {"metric": "calls-on-time", "date": "2026-05-01", "numerator": 1, "denominator": 2}
    client.post("/v1/ingest/values", json=[row], headers=dept)
    client.get("/v1/audit", headers={"Authorization": "Bearer wrong"})
    got = lines(access_log.records)
    assert [(g["method"], g["route"], g["status"]) for g in got] == [
        ("GET", "/v1/metrics/{slug}", 200),
        ("GET", "/v1/values.csv", 200),
        ("GET", "unmatched", 404),
        ("POST", "/v1/ingest/values", 200),
        ("GET", "/v1/audit", 401),
    ]
    assert got[0]["request_id"] == "one" and got[0]["key_id"] is None
    assert got[3]["key_id"] is not None and got[4]["key_id"] is None
    assert all(g["duration_ms"] >= 0 and g["msg"] == "request" for g in got)
    assert got[2]["path"] == "/no/such/page"
    text = orjson.dumps(got, default=str).decode()
    assert dept["Authorization"].split()[1] not in text and "wrong" not in text


def test_json_formatter_writes_one_object_a_line() -> None:
    record = logging.LogRecord("cityscore", logging.ERROR, __file__, 1, "boom %s", ("x",), None)
    record.route = "/v1/values"
    token = request_id.current.set("rid-1")
    try:
        line = logs.JsonFormatter().format(record)
    finally:
        request_id.current.reset(token)
    out = orjson.loads(line)
    assert "\n" not in line
    assert out["msg"] == "boom x" and out["level"] == "error" and out["route"] == "/v1/values"
    assert out["request_id"] == "rid-1" and out["ts"].endswith("Z")


def test_an_unhandled_error_is_logged_with_its_request_id(connection: Any) -> None:
    app = create_app(Settings(rate_limit_enabled=False), bind=connection)

    def boom() -> None:
        raise RuntimeError("kaput")

    app.add_api_route("/boom", boom)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(logs.JsonFormatter().format(record))  # type: ignore[method-assign]
    logger = logging.getLogger("cityscore")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.get("/boom", headers={"X-Request-ID": "boom-1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert r.status_code == 500
    errors = [orjson.loads(line) for line in lines if '"unhandled error"' in line]
    assert errors and errors[0]["request_id"] == "boom-1" and "kaput" in errors[0]["exc"]
    access = [orjson.loads(line) for line in lines if '"request"' in line]
    assert [(a["route"], a["status"]) for a in access] == [("/boom", 500)]


def test_metrics_scrape_series_move(client: TestClient, session: Session) -> None:
    admin = admin_headers(session)
    put_department(client, admin, "311")
    put_metric(client, admin, "calls-on-time", "311")
    dept = department_headers(session, "311")
    before = scrape(client)
    client.get("/v1/departments")
    client.get("/v1/departments")
    client.get("/v1/metrics/no-such-metric-4711")
    rows = [
        {"metric": "calls-on-time", "date": f"2026-05-0{d}", "numerator": d, "denominator": 9}
        for d in (1, 2, 3)
    ]
    assert client.post("/v1/ingest/values", json=rows, headers=dept).status_code == 200
    client.post("/v1/ingest/values", json=rows, params={"dry_run": "true"}, headers=dept)
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    hist = "cityscore_http_request_duration_seconds_count"
    assert moved(hist, method="GET", route="/v1/departments") == 2
    assert moved(hist, method="GET", route="/v1/metrics/{slug}") == 1
    total = "cityscore_http_requests_total"
    assert moved(total, method="GET", route="/v1/metrics/{slug}", status="404") == 1
    assert moved(total, method="POST", route="/v1/ingest/values", status="200") == 2
    assert moved("cityscore_ingest_batches_total", outcome="committed") == 1
    assert moved("cityscore_ingest_batches_total", outcome="dry_run") == 1
    assert moved("cityscore_ingest_rows_total", change="created") == 3
    assert moved("cityscore_rescore_duration_seconds_count", kind="days") == 1
    assert not any("4711" in str(labels) for _, labels in after)  # templates, not raw paths


def test_rate_limit_rejections_are_counted(connection: Any) -> None:
    settings = Settings(rate_limit_enabled=True, rate_limit_reads_per_minute=2)
    with TestClient(create_app(settings, bind=connection)) as client:
        before = scrape(client)  # exempt from the limit itself
        statuses = [client.get("/v1/departments").status_code for _ in range(4)]
        after = scrape(client)
    assert statuses[:2] == [200, 200] and statuses[2:] == [429, 429]
    name = "cityscore_rate_limit_rejections_total"
    assert value(after, name, policy="reads") - value(before, name, policy="reads") == 2


def test_pool_connections_in_use(engine: Engine) -> None:
    metrics.instrument_pool(engine)
    metrics.instrument_pool(engine)  # idempotent: one listener per engine
    gauge = "cityscore_db_pool_connections_in_use"
    with TestClient(create_app(Settings(rate_limit_enabled=False), bind=engine)) as client:
        idle = value(scrape(client), gauge)
        with engine.connect(), engine.connect():
            assert value(scrape(client), gauge) == idle + 2
        assert value(scrape(client), gauge) == idle


@pytest.mark.parametrize("how", ["uvicorn", "cityscore"])
def test_several_workers_share_one_scrape(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any worker's scrape adds up every worker's samples: with PROMETHEUS_MULTIPROC_DIR set
    (plain uvicorn), or by default under ``cityscore serve --workers 2``."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    db = tmp_path / "live.db"
    command.upgrade(alembic_config(f"sqlite:///{db}"), "head")
    prom = tmp_path / "prom"
    prom.mkdir()
    env = {"DATABASE_URL": f"sqlite:///{db}"}
    if how == "uvicorn":
        env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    with (
        live_server(tmp_path, env, workers=2, command=how) as live,
        httpx.Client(base_url=live.url) as http,
    ):
        for _ in range(60):
            # A fresh connection each time, so that both workers take requests.
            assert httpx.get(live.url + "/v1/departments").status_code == 200
        samples = scrape(http)
    count = "cityscore_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route="/v1/departments") == 60
    if how == "uvicorn":
        writers = {p.name.rsplit("_", 1)[-1] for p in prom.glob("histogram_*.db")}
        assert len(writers) == 2, writers  # both workers served and wrote samples


def test_multiprocess_dir_is_emptied_or_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    (tmp_path / "prom").mkdir()
    (tmp_path / "prom" / "counter_123.db").write_bytes(b"stale")
    metrics.prepare_multiprocess_dir(4)()
    assert list((tmp_path / "prom").iterdir()) == []
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    metrics.prepare_multiprocess_dir(1)()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    cleanup = metrics.prepare_multiprocess_dir(2)
    made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert made.is_dir() and not list(made.iterdir())
    cleanup()
    assert not made.exists()


def test_serve_makes_a_configured_metrics_directory_that_does_not_exist(tmp_path: Path) -> None:
    """The image sets PROMETHEUS_MULTIPROC_DIR=/tmp/cityscore-metrics, which nothing creates:
    serve died with FileNotFoundError at start (found by running compose.yaml)."""
    from tests.live import free_port

    metrics_dir = tmp_path / "not" / "yet"
    port = free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
    }
    cli = str(Path(sys.executable).parent / "cityscore")
    proc = subprocess.Popen(
        [cli, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        answered = False
        while time.monotonic() < deadline and proc.poll() is None and not answered:
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success
            except httpx.HTTPError:
                time.sleep(0.2)
        died = proc.poll() is not None and proc.stderr is not None
        assert answered, proc.stderr.read().decode() if died and proc.stderr else "no answer"
    finally:
        proc.terminate()
        proc.wait(15)
