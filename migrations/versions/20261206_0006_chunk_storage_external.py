"""Dataset chunks stored uncompressed on PostgreSQL: dataset_chunks.data SET STORAGE EXTERNAL.

Reviewed by hand:

- A chunk is 4 MiB of float64 rows (or int32 class codes). PostgreSQL tries to compress
  every value it moves out of line (EXTENDED storage, the default for bytea), and float
  rows barely compress: even lz4 spent 0.3-0.5 s of a 200 MB upload finding that out.
  EXTERNAL stores them out of line as they are. Rows stored before keep their
  compression; readers decompress either alike.
- Only the column's storage strategy changes: no table rewrite, no lock beyond a moment's.
- SQLite has no such setting: nothing to do there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE dataset_chunks ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE dataset_chunks ALTER COLUMN data SET STORAGE EXTENDED")
