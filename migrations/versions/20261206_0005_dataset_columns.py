"""Dataset columns: typed schema entries, and the upload's overrides in the dedup key.

Reviewed by hand (autogenerate proposed the column and the two index changes; the data
step is ours):

- datasets.overrides holds the SHA-256 of the upload's categorical= and ignore= lists
  (service.datasets.service.overrides_key), "" when the upload gave none: the same bytes
  with the same label read another way are another dataset. Every existing dataset was
  uploaded without them, so the server default "" is its value.
- The unique index (sha256, label) becomes (sha256, label, overrides).
- datasets.schema entries gain kind, missing, distinct, levels, top_levels, min, max,
  mean and warning (service.datasets.reader_summary). Datasets stored before this
  revision had only numeric features and no missing cell: features become numeric
  (booleans categorical with levels "false", "true": their stored 0 and 1 are those
  codes), missing 0, the rest null (not counted then); the label is categorical unless
  its type is integer or number. Downgrading keeps name, type and role (an "ignored"
  role becomes "feature"); it fails on the unique index if the same bytes were stored
  twice with different overrides: delete one of them first.
- SQLite adds the column and swaps the indexes in place (recreate="never").

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 07:20:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DATASETS = sa.table("datasets", sa.column("id", sa.String), sa.column("schema", sa.JSON))
NUMBER_TYPES = ("integer", "number")
UNCOUNTED = dict.fromkeys(("distinct", "levels", "top_levels", "min", "max", "mean", "warning"))


def upgrade() -> None:
    with op.batch_alter_table("datasets", recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("overrides", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.drop_index("uq_datasets_sha256_label")
        batch_op.create_index(
            "uq_datasets_sha256_label_overrides", ["sha256", "label", "overrides"], unique=True
        )
    _rewrite_schemas(_typed_entry)


def downgrade() -> None:
    _rewrite_schemas(_plain_entry)
    with op.batch_alter_table("datasets", recreate="never") as batch_op:
        batch_op.drop_index("uq_datasets_sha256_label_overrides")
        batch_op.create_index("uq_datasets_sha256_label", ["sha256", "label"], unique=True)
        batch_op.drop_column("overrides")


def _rewrite_schemas(rewrite: Any) -> None:
    if op.get_context().as_sql:
        # Offline (`backprop migrate --sql`) there are no rows to read: the API reads an
        # entry without a kind as this rewrite would make it (ColumnPublic).
        return
    connection = op.get_bind()
    for dataset_id, schema in connection.execute(sa.select(DATASETS.c.id, DATASETS.c.schema)):
        connection.execute(
            DATASETS.update()
            .where(DATASETS.c.id == dataset_id)
            .values(schema=[rewrite(entry) for entry in schema])
        )


def _typed_entry(entry: dict[str, Any]) -> dict[str, Any]:
    typed = {**entry, **UNCOUNTED, "missing": 0}
    if entry["role"] == "label":
        typed["kind"] = "numeric" if entry["type"] in NUMBER_TYPES else "categorical"
    elif entry["type"] == "boolean":
        typed |= {"kind": "categorical", "levels": ["false", "true"]}
    else:
        typed["kind"] = "numeric"
    return {key: typed[key] for key in ("name", "role", "type", "kind", "missing", *UNCOUNTED)}


def _plain_entry(entry: dict[str, Any]) -> dict[str, Any]:
    role = "feature" if entry["role"] == "ignored" else entry["role"]
    return {"name": entry["name"], "type": entry["type"], "role": role}
