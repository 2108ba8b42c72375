"""The fair claim's index: jobs (project, started_at).

Reviewed by hand:

- The fair claim (service.queue.fair_claim) breaks ties between projects with equal
  running jobs by each one's latest job start, max(started_at) of the project's jobs.
  With this index that is one step down a b-tree per project on both databases, however
  many finished jobs a project keeps; without it, a read of every job the project ever ran,
  on every claim.
- Only an index: no row changes, nothing to copy, offline-safe on both databases.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 15:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.create_index("ix_jobs_project_started_at", ["project", "started_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.drop_index("ix_jobs_project_started_at")
