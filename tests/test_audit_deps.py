"""`make audit-deps` (.ci/audit_deps.py): a vulnerability fails, an unreachable service is loud."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE = """#!{python}
import sys, pathlib
args = sys.argv[1:]
report = pathlib.Path(args[args.index("-o") + 1])
mode = {mode!r}
if mode == "offline":
    sys.exit("requests.exceptions.ConnectionError: pypi.org unreachable")
report.write_bytes({report!r})
sys.exit(1 if mode == "vulnerable" else 0)
"""
OK = {"name": "fastapi", "version": "1.0", "vulns": []}
SKIPPED = {
    "name": "alembic",
    "skip_reason": "Dependency not found on PyPI and could not be audited",
}
EDITABLE = {"name": "cityscore-api", "skip_reason": "distribution marked as editable"}
VULN = {
    "name": "starlette",
    "version": "0.1",
    "vulns": [{"id": "PYSEC-0000-1", "fix_versions": ["0.2"]}],
}


def audit(tmp: Path, mode: str, deps: list[Any], **env: str) -> tuple[int, str]:
    fake = tmp / "pip-audit"
    report = orjson.dumps({"dependencies": deps})
    fake.write_text(FAKE.format(python=sys.executable, mode=mode, report=report))
    fake.chmod(0o755)
    done = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "audit_deps.py")],
        env={**os.environ, "PIP_AUDIT_BIN": str(fake), "PIP_AUDIT_REQUIRED": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def test_clean_environment_passes_quietly(tmp_path: Path) -> None:
    rc, out = audit(tmp_path, "clean", [OK, EDITABLE])
    assert rc == 0 and "1 distributions audited, 0 vulnerable, 0 could not" in out
    assert "!!!" not in out


def test_a_known_vulnerability_fails_the_build(tmp_path: Path) -> None:
    rc, out = audit(tmp_path, "vulnerable", [OK, VULN])
    assert rc == 1
    assert "VULNERABLE starlette 0.1: PYSEC-0000-1 (fixed in 0.2)" in out


@pytest.mark.parametrize("required", ["", "1"])
def test_unaudited_distributions_are_shouted(tmp_path: Path, required: str) -> None:
    rc, out = audit(tmp_path, "skipped", [OK, SKIPPED, EDITABLE], PIP_AUDIT_REQUIRED=required)
    assert "!!! 1 of 3 installed distributions could NOT be audited" in out
    assert rc == (1 if required else 0)


@pytest.mark.parametrize("required", ["", "1"])
def test_an_unreachable_service_is_shouted(tmp_path: Path, required: str) -> None:
    rc, out = audit(tmp_path, "offline", [], PIP_AUDIT_REQUIRED=required)
    assert "NOTHING WAS AUDITED" in out and "pypi.org unreachable" in out
    assert rc == (1 if required else 0)
