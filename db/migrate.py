"""Alembic from the installed package: where the migrations are, upgrade, and the schema check.

The migrations live in the top-level ``alembic/`` directory of the repository; ``db/migrations``
is a symlink to it, so they ship inside the wheel as ``db/migrations`` and are found through
``importlib.resources`` from any working directory, installed or editable.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.engine import make_url

from alembic import command
from db.notify import notify

# Session-level advisory lock held around `db upgrade` on PostgreSQL ("CITYMIGR"), so that
# several replicas starting at once migrate one after the other (the later ones find the schema
# at head and do nothing). Distinct from the writers' lock in db.session.
MIGRATE_LOCK_ID = 0x434954594D494752


def script_location() -> Path:
    """The directory holding env.py and versions/ (inside the installed package)."""
    return Path(str(resources.files("db") / "migrations"))


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config that needs no alembic.ini and no particular working directory."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def schema_problem(conn: Connection, heads: set[str] | None = None) -> str | None:
    """Why the schema behind ``conn`` is not usable by this code, or None when it is at head."""
    heads = head_revisions() if heads is None else heads
    if not inspect(conn).has_table("alembic_version"):
        return "The database schema is not migrated: run `cityscore db upgrade`."
    current = current_revisions(conn)
    if current != heads:
        have = ", ".join(sorted(current)) or "none"
        want = ", ".join(sorted(heads))
        return (
            f"The database schema is at revision {have}, not at head {want}: "
            "run `cityscore db upgrade`."
        )
    return None


def upgrade(engine: Engine) -> None:
    """Upgrade to head. Safe to run from several processes at once on the same database."""
    postgres = engine.dialect.name == "postgresql"
    # On SQLite the writer option makes the migration transaction BEGIN IMMEDIATE: a second
    # process waits for the first instead of failing on "table already exists".
    with engine.connect().execution_options(cityscore_writer=True) as conn:
        if postgres:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATE_LOCK_ID})")
            conn.commit()
        try:
            command.upgrade(alembic_config(connection=conn), "head")
            notify(conn)  # running servers' cached versions go (a migration may move data)
            conn.commit()
        finally:
            if postgres:
                conn.rollback()
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATE_LOCK_ID})")
                conn.commit()


def describe(url: str) -> str:
    """The database URL with its password masked, for logs."""
    return make_url(url).render_as_string(hide_password=True)
