"""Browser tests: the real app under uvicorn on a free port, Debian's chromium via Playwright.

The server is started with ``cityscore db upgrade`` and ``cityscore demo --years 2`` on a
store of its own: a SQLite file, and for the tests that compare pages with the API, also a
fresh PostgreSQL database on the suite's server. The browser is ``/usr/bin/chromium``
(never one Playwright downloads). Without it the browser tests skip with a reason, except in
CI (``CI=true``), where a missing browser fails them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
BIN = Path(sys.executable).parent
LOCAL_HOSTS = {"127.0.0.1"}


def free_port() -> int:
    """A free port: from TEST_PORT_RANGE (``8150-8199``) when set, else any the OS gives."""
    wanted = os.environ.get("TEST_PORT_RANGE")
    candidates = range(int(wanted.split("-")[0]), int(wanted.split("-")[1]) + 1) if wanted else [0]
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError(f"no free port in {wanted}")


@dataclass
class Site:
    base: str
    backend: str
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str) -> str:
        return self.base + path

    def api(self, path: str) -> Any:
        r = httpx.get(self.base + path, timeout=30)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        return r.json()


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def start_site(database_url: str, backend: str, workdir: Path) -> Site:
    env = {**os.environ, "DATABASE_URL": database_url, "RATE_LIMIT_ENABLED": "false"}
    cli = str(BIN / "cityscore")
    _run([cli, "db", "upgrade"], env)
    _run([cli, "demo", "--years", "2"], env)
    port = free_port()
    log = workdir / f"server-{backend}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "uvicorn"), "api.asgi:app", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return Site(base, backend, process, log)
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.terminate()
    raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")


def stop_site(site: Site) -> None:
    site.process.terminate()
    try:
        site.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        site.process.kill()


@pytest.fixture(scope="session")
def sqlite_site() -> Iterator[Site]:
    with tempfile.TemporaryDirectory() as tmp:
        site = start_site(f"sqlite:///{tmp}/web.db", "sqlite", Path(tmp))
        yield site
        stop_site(site)


@pytest.fixture(scope="session")
def postgresql_site(postgresql_url: str) -> Iterator[Site]:
    """A database of its own on the suite's PostgreSQL server (the demo commits for real)."""
    name = f"cityscore_web_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgresql_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgresql_url).set(database=name).render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory() as tmp:
        site = start_site(url, "postgresql", Path(tmp))
        yield site
        stop_site(site)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest) -> Site:
    """The live server on each store (for the tests that compare pages with the API)."""
    found: Site = request.getfixturevalue(f"{request.param}_site")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@dataclass
class Watched:
    """A browser page plus everything it tried to fetch elsewhere and every console error."""

    page: Any
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def open_page(browser: Any, width: int = 1280, height: int = 900) -> Watched:
    context = browser.new_context(viewport={"width": width, "height": height})
    watched = Watched(context.new_page())

    def guard(route: Any) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            watched.external.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    watched.page.on(
        "console", lambda msg: watched.errors.append(msg.text) if msg.type == "error" else None
    )
    watched.page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    return watched


@pytest.fixture
def tab(browser: Any) -> Iterator[Watched]:
    """A desktop-sized page; the test fails if it fetched anything off 127.0.0.1."""
    watched = open_page(browser)
    yield watched
    watched.page.context.close()
    assert watched.external == [], f"requests left 127.0.0.1: {watched.external}"
