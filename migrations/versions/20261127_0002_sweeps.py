"""Sweeps: the sweeps table, and jobs.sweep_id / jobs.trial for a sweep's child jobs.

Reviewed by hand (autogenerate proposed the same tables, columns, indexes and keys):

- jobs.sweep_id is ON DELETE SET NULL: removing a sweep's record leaves its jobs and
  their fitted models standing, as removing a dataset does.
- SQLite cannot add a foreign key to a table, so batch mode rebuilds jobs: it copies
  the rows into a new table, drops the old one and renames the new one. That is safe
  only with foreign keys off, which migrations/env.py ensures for every SQLite
  migration (otherwise the DROP would cascade-delete every job's history, checkpoint,
  model and idempotency key); a test upgrades a database full of rows to prove it.
  (Adding the column in place with an inline REFERENCES clause avoids the rebuild,
  but SQLAlchemy does not reflect the ON DELETE of an inline clause, and
  `alembic check` would report drift.)
- The downgrade rebuilds jobs the same way on SQLite: it refuses to drop a column
  that a table-level foreign key names.
- Offline (`backprop migrate --sql`) there is no database to reflect jobs from, so
  batch mode copies _jobs_table(), jobs as 0001 (or this revision) created it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 23:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _jobs_table(*, with_sweeps: bool) -> sa.Table | None:
    """Offline: jobs as revision 0001 created it (with_sweeps: as this one leaves it),
    for batch mode to copy. Online: None, and batch mode reflects the real table.
    """
    if not context.is_offline_mode():
        return None
    columns = [
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model_type", sa.String(length=40), nullable=False),
        sa.Column("model_spec", sa.JSON(), nullable=False),
        sa.Column("training_spec", sa.JSON(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Float(), nullable=True),
        sa.Column("val_loss", sa.Float(), nullable=True),
        sa.Column("best_epoch", sa.Integer(), nullable=True),
        sa.Column("elapsed_seconds", sa.Float(), nullable=False),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]
    constraints: list[sa.SchemaItem] = [
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_jobs_dataset_id_datasets",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.Index("ix_jobs_created_at_id", "created_at", "id"),
        sa.Index("ix_jobs_dataset_id", "dataset_id"),
        sa.Index("ix_jobs_status_created_at", "status", "created_at"),
    ]
    if with_sweeps:
        columns += [
            sa.Column("sweep_id", sa.String(length=32), nullable=True),
            sa.Column("trial", sa.JSON(), nullable=True),
        ]
        constraints += [
            sa.ForeignKeyConstraint(
                ["sweep_id"], ["sweeps.id"], name="fk_jobs_sweep_id_sweeps", ondelete="SET NULL"
            ),
            sa.Index("ix_jobs_sweep_id", "sweep_id"),
        ]
    return sa.Table("jobs", sa.MetaData(), *columns, *constraints)


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=True),
        sa.Column("model_spec", sa.JSON(), nullable=False),
        sa.Column("training_spec", sa.JSON(), nullable=False),
        sa.Column("search", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_sweeps_dataset_id_datasets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
    )
    op.create_index("ix_sweeps_created_at_id", "sweeps", ["created_at", "id"], unique=False)

    with op.batch_alter_table("jobs", copy_from=_jobs_table(with_sweeps=False)) as batch_op:
        batch_op.add_column(sa.Column("sweep_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("trial", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_jobs_sweep_id_sweeps"),
            "sweeps",
            ["sweep_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_jobs_sweep_id", ["sweep_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", copy_from=_jobs_table(with_sweeps=True)) as batch_op:
        batch_op.drop_index("ix_jobs_sweep_id")
        batch_op.drop_constraint(op.f("fk_jobs_sweep_id_sweeps"), type_="foreignkey")
        batch_op.drop_column("trial")
        batch_op.drop_column("sweep_id")

    op.drop_index("ix_sweeps_created_at_id", table_name="sweeps")
    op.drop_table("sweeps")
