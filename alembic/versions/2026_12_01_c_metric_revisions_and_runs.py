"""metric revisions and published runs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 11:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cityscore_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.Column('figures_sha256', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cityscore_runs')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('cityscore_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cityscore_runs_as_of'), ['as_of'], unique=False)
        batch_op.create_index('ix_cityscore_runs_published_at', ['published_at'], unique=False)

    op.create_table('run_figures',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('metric_id', sa.Integer(), nullable=True),
    sa.Column('metric_name', sa.String(length=200), nullable=False),
    sa.Column('target', sa.Text(), nullable=True),
    sa.Column('metric_logic', sa.Text(), nullable=True),
    sa.Column('day_score', sa.Text(), nullable=True),
    sa.Column('day_numerator', sa.Text(), nullable=True),
    sa.Column('day_denominator', sa.Text(), nullable=True),
    sa.Column('week_score', sa.Text(), nullable=True),
    sa.Column('week_numerator', sa.Text(), nullable=True),
    sa.Column('week_denominator', sa.Text(), nullable=True),
    sa.Column('month_score', sa.Text(), nullable=True),
    sa.Column('month_numerator', sa.Text(), nullable=True),
    sa.Column('month_denominator', sa.Text(), nullable=True),
    sa.Column('quarter_score', sa.Text(), nullable=True),
    sa.Column('quarter_numerator', sa.Text(), nullable=True),
    sa.Column('quarter_denominator', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['cityscore_runs.id'], name=op.f('fk_run_figures_run_id_cityscore_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'position', name=op.f('pk_run_figures'))
    )
    op.create_table('metric_revisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('metric_id', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.DateTime(), nullable=False),
    sa.Column('slug', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('unit', sa.String(length=100), nullable=True),
    sa.Column('direction', sa.String(length=20), nullable=False),
    sa.Column('aggregation', sa.String(length=20), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('baseline_years', sa.Integer(), nullable=False),
    sa.Column('in_cityscore', sa.Boolean(), nullable=False),
    sa.Column('source_url', sa.String(length=500), nullable=True),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['metric_id'], ['metrics.id'], name=op.f('fk_metric_revisions_metric_id_metrics'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_revisions')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('metric_revisions', schema=None) as batch_op:
        batch_op.create_index('ix_metric_revisions_metric_id_valid_from', ['metric_id', 'valid_from'], unique=False)

    _backfill_metric_revisions()


def _backfill_metric_revisions() -> None:
    """Each existing metric's definition becomes its first kept version, valid from its last
    update (earlier versions were not kept before this revision)."""
    bind = op.get_bind()
    meta = sa.MetaData()
    metrics = sa.Table("metrics", meta, autoload_with=bind)
    targets = sa.Table("metric_targets", meta, autoload_with=bind)
    revisions = sa.Table("metric_revisions", meta, autoload_with=bind)
    by_metric: dict[int, list[list[object]]] = {}
    for row in bind.execute(
        sa.select(targets.c.metric_id, targets.c.effective_from, targets.c.value).order_by(
            targets.c.metric_id, targets.c.effective_from
        )
    ):
        by_metric.setdefault(row.metric_id, []).append([row.effective_from.isoformat(), row.value])
    fields = ("slug", "name", "description", "department_id", "unit", "direction",
              "aggregation", "reference", "baseline_years", "in_cityscore", "source_url")
    rows = [
        {"metric_id": m.id, "valid_from": m.updated_at, "targets": by_metric.get(m.id, []),
         **{f: getattr(m, f) for f in fields}}
        for m in bind.execute(sa.select(metrics))
    ]
    if rows:
        bind.execute(revisions.insert(), rows)


def downgrade() -> None:
    with op.batch_alter_table('metric_revisions', schema=None) as batch_op:
        batch_op.drop_index('ix_metric_revisions_metric_id_valid_from')

    op.drop_table('metric_revisions')
    op.drop_table('run_figures')
    with op.batch_alter_table('cityscore_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_cityscore_runs_published_at')
        batch_op.drop_index(batch_op.f('ix_cityscore_runs_as_of'))

    op.drop_table('cityscore_runs')
