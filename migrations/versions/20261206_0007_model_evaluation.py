"""Model evaluation: models.evaluation, the fitted model's metrics on its validation split.

Reviewed by hand:

- A JSON object (engine.evaluation.evaluate_fit): accuracy, log-loss, ROC AUC, per-class
  precision / recall / F1, the confusion matrix, ROC and calibration curves, and which
  split they were measured on. NULL for models from before this revision: their splits
  are gone with their workers, so nothing can be filled in.
- SQLite adds and drops a nullable column in place (recreate="never"), as in 0004.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("evaluation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models", recreate="never") as batch_op:
        batch_op.drop_column("evaluation")
