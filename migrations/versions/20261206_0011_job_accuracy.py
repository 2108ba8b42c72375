"""Job accuracy: jobs.train_accuracy and jobs.val_accuracy, the latest epoch's, beside its losses.

Reviewed by hand:

- Written with the progress fields (record_progress, complete_job), so a job's answer, its
  event stream and `backprop jobs` show accuracy without reading the history.
- Nullable: a job from before this revision has none until its next epoch (a finished one
  keeps none; its history has them), and val_accuracy is NULL without a validation split.
- SQLite adds and drops nullable columns in place (recreate="never"), as in 0004.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 13:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("train_accuracy", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("val_accuracy", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.drop_column("val_accuracy")
        batch_op.drop_column("train_accuracy")
