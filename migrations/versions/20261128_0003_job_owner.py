"""Job owner: jobs.api_key_id, the id of the API key that submitted the job.

Reviewed by hand (autogenerate proposed the same column and index):

- The column holds service.core.auth.key_id(key), the first hex digits of the key's
  SHA-256: a name for the key, never the key. NULL for jobs submitted while the
  API had no keys, and for every job that existed before this revision: they all
  count as the anonymous caller's.
- The index (api_key_id, status) serves the count of a key's queued jobs that
  POST /v1/jobs and POST /v1/sweeps make (BACKPROP_MAX_QUEUED_JOBS_PER_KEY).
- SQLite adds a nullable column and an index in place (batch mode finds nothing
  that needs the table copied), and since 3.35 drops a column in place too; the
  downgrade asks for that (recreate="never"), so neither direction copies jobs and
  both work offline (`backprop migrate --sql`) without reflecting the table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("api_key_id", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_jobs_api_key_id_status", ["api_key_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.drop_index("ix_jobs_api_key_id_status")
        batch_op.drop_column("api_key_id")
