"""Job warnings: jobs.warnings, what the job was told about its data when it was created.

Reviewed by hand:

- A JSON list of strings, e.g. 'column "rownames": unique per row (names or ids): left
  out of training', copied from the dataset's columns when the job is created, so a job
  keeps showing them after its dataset is deleted. NULL for jobs from before this
  revision: they have none (their datasets were all numeric and complete).
- SQLite adds and drops a nullable column in place (recreate="never"), as in 0003.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 07:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.drop_column("warnings")
