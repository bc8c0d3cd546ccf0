"""API keys: the service on both stores, and the `cityscore keys` CLI end to end."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlmodel import Session

from api.errors import NotFound
from api.keys import service as keys
from db.models import ApiKey, Department, utcnow

K = ApiKey.__table__  # type: ignore[attr-defined]
ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "cityscore"


def add_department(session: Session, slug: str) -> None:
    session.add(Department(slug=slug, name=slug.title(), updated_at=utcnow()))
    session.flush()


def test_keys_are_random_shown_once_and_stored_as_a_hash(session: Session) -> None:
    add_department(session, "311")
    key, token = keys.create(session, name="nightly job", department="311")
    other, other_token = keys.create(session, name="analytics", admin=True)
    assert token != other_token
    secret = token.removeprefix(keys.PREFIX)
    assert len(secret) * 6 >= 128  # URL-safe base64: 6 bits a character
    row = session.execute(select(K).where(K.c.id == key.id)).one()
    assert row.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(v) for v in row}  # the plaintext is stored nowhere
    assert row.prefix == token[:10] and len(row.prefix) < len(token)
    assert (row.admin, row.revoked_at) == (False, None)
    assert session.execute(select(K.c.admin).where(K.c.id == other.id)).scalar() is True


def test_authenticate_and_revoke(session: Session) -> None:
    add_department(session, "311")
    key, token = keys.create(session, name="k", department="311")
    found = keys.authenticate(session, token)
    assert found is not None and found.id == key.id
    assert keys.authenticate(session, token + "x") is None
    assert keys.authenticate(session, "") is None
    assert key.id is not None
    revoked = keys.revoke(session, key.id)
    assert isinstance(revoked.revoked_at, dt.datetime)
    first = revoked.revoked_at
    session.flush()
    assert keys.authenticate(session, token) is None
    assert keys.revoke(session, key.id).revoked_at == first  # revoking twice keeps the time
    with pytest.raises(NotFound):
        keys.revoke(session, 999_999)


def test_unknown_department_is_refused(session: Session) -> None:
    with pytest.raises(NotFound):
        keys.create(session, name="k", department="nowhere")


def test_list_keys_never_shows_secrets(session: Session) -> None:
    add_department(session, "fire")
    keys.create(session, name="a", department="fire")
    _, token = keys.create(session, name="b", admin=True)
    rows = keys.list_keys(session)
    assert [set(r) for r in rows] == [
        {"id", "name", "department", "admin", "created_at", "revoked_at", "expires_at"}
    ] * 2
    assert [(r["name"], r["department"], r["admin"]) for r in rows] == [
        ("a", "fire", False),
        ("b", None, True),
    ]
    assert token not in repr(rows)


# --- the CLI, against a fresh SQLite file ---------------------------------------------------


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [str(CLI), *args], cwd=db.parent, env=env, capture_output=True, text=True, timeout=120
    )


def reasons(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the line saying which database the command used."""
    return [x for x in done.stderr.splitlines() if not x.startswith("cityscore: database ")]


def test_keys_cli_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    done = cli(db, "db", "upgrade")
    assert done.returncode == 0, done.stderr

    created = cli(db, "keys", "create", "--admin", "--name", "x")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith(keys.PREFIX) and " " not in token and len(token) > 40

    missing = cli(db, "keys", "create", "--department", "nowhere", "--name", "y")
    assert missing.returncode != 0
    assert missing.stdout == ""
    assert missing.stderr.splitlines()[0] == f"cityscore: database sqlite:///{db}"
    assert len(reasons(missing)) == 1 and "nowhere" in reasons(missing)[0]

    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO departments (slug, name, updated_at) VALUES ('311', '311', ?)",
            (dt.datetime(2026, 1, 1).isoformat(sep=" "),),
        )
    dept = cli(db, "keys", "create", "--department", "311", "--name", "nightly")
    assert dept.returncode == 0, dept.stderr
    dept_token = dept.stdout.strip().splitlines()[-1]
    assert dept_token != token

    listed = cli(db, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, Any]] = orjson.loads(listed.stdout)
    assert [(r["id"], r["name"], r["department"], r["admin"]) for r in rows] == [
        (1, "x", None, True),
        (2, "nightly", "311", False),
    ]
    for r in rows:
        assert set(r) == {
            "id",
            "name",
            "department",
            "admin",
            "created_at",
            "revoked_at",
            "expires_at",
        }
        assert r["created_at"].endswith("Z") and r["revoked_at"] is None
    assert token not in listed.stdout and dept_token not in listed.stdout

    with sqlite3.connect(db) as conn:
        stored = [h for (h,) in conn.execute("SELECT key_hash FROM api_keys ORDER BY id")]
    assert stored == [hashlib.sha256(t.encode()).hexdigest() for t in (token, dept_token)]

    revoked = cli(db, "keys", "revoke", "1")
    assert revoked.returncode == 0, revoked.stderr
    rows = orjson.loads(cli(db, "keys", "list", "--json").stdout)
    assert rows[0]["revoked_at"] is not None and rows[1]["revoked_at"] is None
    plain = cli(db, "keys", "list")
    assert plain.returncode == 0
    header, first, second = plain.stdout.splitlines()
    assert header.split() == [
        "ID", "NAME", "SCOPE", "CREATED", "(UTC)", "REVOKED", "(UTC)", "EXPIRES", "(UTC)"
    ]  # fmt: skip
    today = f"{dt.datetime.now(dt.UTC):%Y-%m-%d}"
    assert first.split()[:3] == ["1", "x", "admin"] and first.count(today) == 2
    assert first.split()[-2].endswith("Z") and first.split()[-1] == "-"  # revoked, no expiry
    assert second.split()[:4] == ["2", "nightly", "department", "311"]
    assert second.count(today) == 1 and second.split()[-2:] == ["-", "-"]

    unknown = cli(db, "keys", "revoke", "99")
    assert unknown.returncode != 0 and len(reasons(unknown)) == 1
    bad = cli(db, "keys", "revoke", "one")
    assert bad.returncode != 0


def test_keys_cli_expiry(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert cli(db, "db", "upgrade").returncode == 0
    dated = cli(db, "keys", "create", "--admin", "--name", "a", "--expires", "2099-01-01")
    assert dated.returncode == 0, dated.stderr
    assert "expires 2099-01-01T05:00:00Z" in dated.stdout  # midnight in New York, in UTC
    days = cli(db, "keys", "create", "--admin", "--name", "b", "--expires-in-days", "90")
    assert days.returncode == 0, days.stderr
    rows = orjson.loads(cli(db, "keys", "list", "--json").stdout)
    assert rows[0]["expires_at"] == "2099-01-01T05:00:00Z"
    in_90 = dt.datetime.fromisoformat(rows[1]["expires_at"].replace("Z", "+00:00"))
    assert abs(in_90 - dt.datetime.now(dt.UTC) - dt.timedelta(days=90)) < dt.timedelta(minutes=5)
    assert "2099-01-01 05:00Z" in cli(db, "keys", "list").stdout  # the EXPIRES column
    for bad in (
        ["--expires", "2000-01-01"],
        ["--expires", "tomorrow"],
        ["--expires-in-days", "0"],
        ["--expires-in-days", "2", "--expires", "2099-01-01"],
    ):
        done = cli(db, "keys", "create", "--admin", "--name", "x", *bad)
        assert done.returncode != 0 and done.stdout == "", bad
        assert done.stderr.strip(), bad
    assert len(orjson.loads(cli(db, "keys", "list", "--json").stdout)) == 2
