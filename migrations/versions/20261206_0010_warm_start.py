"""Warm start: jobs.warm_start and jobs.parent_model_id, a fine-tuning job's parent model.

Reviewed by hand (autogenerate proposed the same columns, index and key):

- jobs.warm_start is the request's {"model_id": ...}, JSON, kept as asked: it still says
  the job was fine-tuned once the parent is gone. NULL for every other job, and for every
  job from before this revision (none was warm-started).
- jobs.parent_model_id refers to models.id ON DELETE SET NULL: the child and its model
  outlive the parent. A model's lineage is read through its job (models.job_id ->
  jobs.parent_model_id), so models gets no column. models already refers to jobs
  (models.job_id), so the two tables refer to each other; the metadata marks this key
  use_alter so that creating and emptying the tables has an order.
- The index on parent_model_id serves the SET NULL when a model is deleted (PostgreSQL
  does not index a referencing column by itself) and "the children of a model".
- SQLite cannot add a foreign key to a table, so batch mode rebuilds jobs, as 0002 does
  (foreign keys are off during SQLite migrations: migrations/env.py). Offline
  (`backprop migrate --sql`) there is no table to reflect, so batch mode copies
  _jobs_table(), jobs as revision 0007 left it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "fk_jobs_parent_model_id_models"


def _jobs_table(*, with_parent: bool) -> sa.Table | None:
    """Offline: jobs as revision 0007 left it (with_parent: as this one leaves it), for
    batch mode to copy. Online: None, and batch mode reflects the real table."""
    if not context.is_offline_mode():
        return None
    timestamp = sa.DateTime(timezone=True)
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
        sa.Column("lease_expires_at", timestamp, nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Float(), nullable=True),
        sa.Column("val_loss", sa.Float(), nullable=True),
        sa.Column("best_epoch", sa.Integer(), nullable=True),
        sa.Column("elapsed_seconds", sa.Float(), nullable=False),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("created_at", timestamp, nullable=False),
        sa.Column("started_at", timestamp, nullable=True),
        sa.Column("finished_at", timestamp, nullable=True),
        sa.Column("heartbeat_at", timestamp, nullable=True),
        sa.Column("updated_at", timestamp, nullable=False),
        sa.Column("sweep_id", sa.String(length=32), nullable=True),
        sa.Column("trial", sa.JSON(), nullable=True),
        sa.Column("api_key_id", sa.String(length=16), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=True),
    ]
    constraints: list[sa.SchemaItem] = [
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name="fk_jobs_dataset_id_datasets", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["sweeps.id"], name="fk_jobs_sweep_id_sweeps", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.Index("ix_jobs_created_at_id", "created_at", "id"),
        sa.Index("ix_jobs_dataset_id", "dataset_id"),
        sa.Index("ix_jobs_status_created_at", "status", "created_at"),
        sa.Index("ix_jobs_sweep_id", "sweep_id"),
        sa.Index("ix_jobs_api_key_id_status", "api_key_id", "status"),
    ]
    if with_parent:
        columns += [
            sa.Column("warm_start", sa.JSON(), nullable=True),
            sa.Column("parent_model_id", sa.String(length=32), nullable=True),
        ]
        constraints += [
            sa.ForeignKeyConstraint(
                ["parent_model_id"], ["models.id"], name=FOREIGN_KEY, ondelete="SET NULL"
            ),
            sa.Index("ix_jobs_parent_model_id", "parent_model_id"),
        ]
    return sa.Table("jobs", sa.MetaData(), *columns, *constraints)


def upgrade() -> None:
    with op.batch_alter_table("jobs", copy_from=_jobs_table(with_parent=False)) as batch_op:
        batch_op.add_column(sa.Column("warm_start", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("parent_model_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            op.f(FOREIGN_KEY), "models", ["parent_model_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_jobs_parent_model_id", ["parent_model_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", copy_from=_jobs_table(with_parent=True)) as batch_op:
        batch_op.drop_index("ix_jobs_parent_model_id")
        batch_op.drop_constraint(op.f(FOREIGN_KEY), type_="foreignkey")
        batch_op.drop_column("parent_model_id")
        batch_op.drop_column("warm_start")
