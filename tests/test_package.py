"""The built wheel on its own: a scratch venv with the runtime dependencies only migrates,
serves and answers from a directory that has no checkout in it, on both stores."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._server import free_port, running_server

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The wheel built from this checkout, installed without extras into a fresh venv (pip's
    cache makes the dependencies a local copy after the first run)."""
    work = tmp_path_factory.mktemp("wheel")
    pip = (sys.executable, "-m", "pip")
    _run(*pip, "wheel", "--no-deps", "--quiet", "-w", work / "dist", ROOT, cwd=work)
    (wheel,) = (work / "dist").glob("cityscore_api-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "db/migrations/env.py" in names, names
    assert any(n.startswith("db/migrations/versions/") for n in names), names
    assert not any(n.startswith(("alembic/", "tests/")) for n in names)
    venv = work / "venv"
    # No pip inside the scratch venv: this pip installs into it (quicker, same result).
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    _run(
        *pip,
        "--python",
        venv / "bin" / "python",
        "install",
        "--quiet",
        "--no-compile",
        wheel,
        cwd=work,
    )
    yield venv


def test_the_wheel_migrates_and_serves_from_a_scratch_directory(
    wheel_venv: Path, scratch_url: str, tmp_path: Path
) -> None:
    scratch = tmp_path / "elsewhere"
    scratch.mkdir()
    python, cli = wheel_venv / "bin" / "python", wheel_venv / "bin" / "cityscore"
    env = {"DATABASE_URL": scratch_url, "RATE_LIMIT_ENABLED": "false", "PYTHONPATH": ""}
    where = _run(python, "-c", "import api, db.migrate as m; print(api.__file__)", cwd=scratch)
    assert where.strip().startswith(str(wheel_venv)), where  # not the checkout
    dev_tools = _run(sys.executable, "-m", "pip", "--python", python, "list", cwd=scratch)
    assert "fastapi" in dev_tools
    assert "pytest" not in dev_tools and "ruff" not in dev_tools  # runtime dependencies only

    out = _run(cli, "db", "upgrade", cwd=scratch, env=env)
    assert "database is at the latest schema" in out
    assert "cityscore: database " in out
    assert _run(cli, "db", "upgrade", cwd=scratch, env=env)  # again: nothing to do

    port = free_port()
    command = [str(cli), "serve", "--port", str(port)]
    with running_server(command, env, scratch, port) as url:
        r = httpx.get(f"{url}/v1/departments")
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [], "next": None}
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
    assert not (scratch / "alembic").exists() and not (scratch / "alembic.ini").exists()
