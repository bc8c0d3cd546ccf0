"""Ids are never reused: AUTOINCREMENT on SQLite (PostgreSQL sequences never reuse).

A key tied to a deleted department's id could otherwise write to the next department
created with the same id.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

TABLES = ("departments", "metrics", "api_keys", "ingest_batches", "analyses")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
