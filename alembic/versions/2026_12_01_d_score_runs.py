"""scores stored as runs per window kind, not rows per as-of date

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:30:00

``metric_scores`` (one row per metric per as-of date, four windows wide) becomes
``metric_score_runs`` (one row per metric, window kind and run of as-of dates with the same
figures inside one window period), and ``metric_scores`` becomes a view of the old shape over
the runs. The runs are backfilled by the next revision (0006), which rescores every metric
from its values: a backfill here would run today's code against this revision's table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from db.models import score_view_sql

    op.create_table('metric_score_runs',
    sa.Column('metric_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('numerator', sa.Float(), nullable=True),
    sa.Column('denominator', sa.Float(), nullable=True),
    sa.Column('points', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('metric_id', 'kind', 'valid_from', name=op.f('pk_metric_score_runs')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('metric_score_runs', schema=None) as batch_op:
        batch_op.create_index('ix_metric_score_runs_kind_valid_from', ['kind', 'valid_from'], unique=False)
    with op.batch_alter_table('metric_scores', schema=None) as batch_op:
        batch_op.drop_index('ix_metric_scores_as_of')
    op.drop_table('metric_scores')
    bind = op.get_bind()
    op.execute(f"CREATE VIEW metric_scores AS {score_view_sql(bind.dialect.name)}")


def downgrade() -> None:
    op.execute("CREATE TABLE metric_scores_rows AS SELECT * FROM metric_scores")
    op.execute("DROP VIEW metric_scores")
    op.create_table('metric_scores',
    sa.Column('metric_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    *(sa.Column(f'{w}_{p}', sa.Float(), nullable=True) for w in ('day', 'week', 'month', 'quarter') for p in ('score', 'numerator', 'denominator')),
    sa.ForeignKeyConstraint(['metric_id'], ['metrics.id'], name=op.f('fk_metric_scores_metric_id_metrics'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('metric_id', 'as_of', name=op.f('pk_metric_scores'))
    )
    op.execute("INSERT INTO metric_scores SELECT * FROM metric_scores_rows")
    op.drop_table('metric_scores_rows')
    with op.batch_alter_table('metric_scores', schema=None) as batch_op:
        batch_op.create_index('ix_metric_scores_as_of', ['as_of'], unique=False)
    with op.batch_alter_table('metric_score_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_metric_score_runs_kind_valid_from')
    op.drop_table('metric_score_runs')
