"""A whole run's logs never contain an API key or an Authorization value (both stores).

A real server (``cityscore serve``, debug logging) and the real CLI; every line either
writes is collected, then searched for every key and every Authorization header sent.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from tests._live import BIN, ROOT, live_server

pytestmark = pytest.mark.committing
ROWS = [{"metric": "calls", "date": "2026-05-01", "numerator": 1, "denominator": 2}]
METRIC = {
    "name": "Calls",
    "department": "311",
    "direction": "higher_is_better",
    "aggregation": "pooled_ratio",
    "reference": "target",
    "targets": [{"effective_from": "2000-01-01", "value": 0.9}],
}


class Cli:
    """The ``cityscore`` command; keeps everything it writes except the one line that shows
    a new key (printed once, by design, on stdout)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.logged: list[str] = []

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "cityscore"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        self.logged.append(done.stderr)
        return done.stdout

    def create(self, *args: str) -> str:
        out = self("keys", "create", *args).splitlines()
        self.logged.append("\n".join(out[:-1]))
        return out[-1]


def every_kind_of_request(http: httpx.Client, cli: Cli, admin: str) -> tuple[list[str], int]:
    """Writes, reads and refusals with good, bad, odd and revoked credentials; returns the
    secrets used and how many Authorization variants were sent."""
    a = {"Authorization": f"Bearer {admin}"}
    dept_body = {"name": "311", "cabinet": None, "description": None, "url": None}
    assert http.put("/v1/departments/311", json=dept_body, headers=a).status_code == 201
    assert http.put("/v1/metrics/calls", json=METRIC, headers=a).status_code == 201
    dept = cli.create("--department", "311", "--name", "nightly", "--expires-in-days", "30")
    spare = cli.create("--department", "311", "--name", "rotation")
    basic = base64.b64encode(f"311:{dept}".encode()).decode()
    authorizations = [
        f"Bearer {dept}",
        f"bEaReR   {dept}",
        f"Bearer {admin}x",
        f"Basic {basic}",
        f"Token {spare}",
        "Bearer not-a-key-at-all-0123456789",
    ]
    for auth in authorizations:
        h = {"Authorization": auth}
        http.post("/v1/ingest/values", json=ROWS, headers=h)
        http.get("/v1/audit", headers=h)
    d = {"Authorization": f"Bearer {dept}"}
    csv = "metric,date,value,numerator,denominator\ncalls,2026-05-02,,3,4\n"
    csv_headers = {**d, "Content-Type": "text/csv"}
    assert http.post("/v1/ingest/values", content=csv, headers=csv_headers).is_success
    assert http.post("/v1/ingest/values?dry_run=true", json=ROWS, headers=d).is_success
    assert http.post("/v1/ingest/values", content=b"[{", headers=d).status_code == 422
    assert http.get("/v1/ingest/batches/1", headers=d).status_code in (200, 404)
    listed = orjson.loads(cli("keys", "list", "--json"))
    cli("keys", "revoke", str(max(k["id"] for k in listed)))
    # The audit rows were committed with their writes by the real server and CLI.
    audit = http.get("/v1/audit", headers=a).json()["data"]
    actions = [row["action"] for row in audit]
    assert actions[0] == "key.revoke" and actions.count("key.create") == 3
    assert {"department.put", "metric.put"} <= set(actions) and actions.count("ingest") == 3
    revoked = {"Authorization": f"Bearer {spare}"}
    assert http.post("/v1/ingest/values", json=ROWS, headers=revoked).status_code == 401
    cli.logged.append(cli("keys", "list"))
    stripped = [k.removeprefix("cs_") for k in (dept, spare)]
    return [dept, spare, basic, *authorizations, *stripped], len(authorizations)


def test_no_key_or_authorization_value_in_any_log(
    committing_engine: Engine, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": committing_engine.url.render_as_string(hide_password=False),
        "LOG_LEVEL": "debug",
    }
    cli = Cli(env)
    admin = cli.create("--admin", "--name", "ops")
    with (
        live_server(tmp_path, env, command="cityscore") as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        secrets, sent = every_kind_of_request(http, cli, admin)
    server_log = live.log.read_text()
    everything = "\n".join([*cli.logged, server_log])
    secrets += [admin, admin.removeprefix("cs_")]
    leaked = [s for s in secrets if s in everything]
    assert leaked == [], "secrets found in the logs"

    requests = [orjson.loads(line) for line in server_log.splitlines() if '"request"' in line]
    assert len(requests) >= 2 * sent + 7
    assert all(r["logger"] == "cityscore.access" and r["request_id"] for r in requests)
    assert {r["key_id"] for r in requests if r["status"] < 400} - {None}  # ids, not keys
