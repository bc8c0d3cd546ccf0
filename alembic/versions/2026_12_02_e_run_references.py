"""score runs keep the baseline they were scored against

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:00:00

``metric_score_runs.reference``: a baseline metric's baseline of the run's window, so that a
rescore whose changed days no baseline window sees (a department's daily numbers) reuses it
instead of re-reading up to ten years of values. Every metric is then rescored from its
values with the code of this release (``rescore_metrics``, which also rewrites CityScore):
the runs 0005 left (or none, coming from the per-as-of-date table) get their references,
and they cover each metric's whole materialised span, which the incremental rescore relies
on. This runs today's code: a later revision that changes the runs table must move this
backfill after itself, as this one took it from 0005.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from sqlmodel import Session

    from api.cityscore import materialise

    op.add_column('metric_score_runs', sa.Column('reference', sa.Float(), nullable=True))
    bind = op.get_bind()
    ids = [r[0] for r in bind.execute(sa.text("SELECT id FROM metrics ORDER BY id"))]
    session = Session(bind=bind)
    materialise.rescore_metrics(session, ids)
    session.flush()


def downgrade() -> None:
    # Native on PostgreSQL and SQLite >= 3.35 (a batch rebuild would drop WITHOUT ROWID).
    op.execute("ALTER TABLE metric_score_runs DROP COLUMN reference")
