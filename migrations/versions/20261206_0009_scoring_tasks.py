"""Scoring tasks: batch predictions and evaluations of a stored dataset, run by workers.

Reviewed by hand (autogenerate proposed the same tables, columns, indexes and keys):

- scoring_tasks is a queue as jobs is: status, attempt (the fencing token), worker,
  lease_expires_at and heartbeat_at, claimed with SKIP LOCKED on PostgreSQL and in the
  SQLite writer's turn (service.queue.scoring_claims). rows_total / rows_done are the
  progress; block_rows fixes the size of every result block at creation, so a new
  attempt resumes at the block after the last one written.
- model_id is ON DELETE CASCADE (a task means nothing without its model); dataset_id is
  ON DELETE SET NULL (a finished batch prediction's result outlives its dataset).
- result is a JSON object: an evaluation's metrics (engine.metrics), NULL otherwise.
- scoring_blocks holds a batch prediction's result, one row per block of block_rows rows
  (their probabilities, (rows, K) float64; the row numbers and labels follow from them),
  so any API process can stream the result and it survives the worker that wrote it.
  PostgreSQL stores the blocks uncompressed (STORAGE EXTERNAL, as dataset_chunks since
  0006): float columns barely compress and trying costs more than the insert.
- New tables only: nothing to copy, nothing rebuilt on SQLite.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scoring_tasks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows_total", sa.BigInteger(), nullable=False),
        sa.Column("rows_done", sa.BigInteger(), nullable=False),
        sa.Column("block_rows", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_scoring_tasks_dataset_id_datasets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_scoring_tasks_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_tasks")),
    )
    with op.batch_alter_table("scoring_tasks", recreate="never") as batch_op:
        batch_op.create_index("ix_scoring_tasks_model_id", ["model_id"], unique=False)
        batch_op.create_index(
            "ix_scoring_tasks_status_created_at", ["status", "created_at"], unique=False
        )
    op.create_table(
        "scoring_blocks",
        sa.Column("task_id", sa.String(length=32), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["scoring_tasks.id"],
            name=op.f("fk_scoring_blocks_task_id_scoring_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "index", name=op.f("pk_scoring_blocks")),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE scoring_blocks ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("scoring_blocks")
    with op.batch_alter_table("scoring_tasks", recreate="never") as batch_op:
        batch_op.drop_index("ix_scoring_tasks_status_created_at")
        batch_op.drop_index("ix_scoring_tasks_model_id")
    op.drop_table("scoring_tasks")
