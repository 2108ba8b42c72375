"""The model registry: registered models, their numbered versions, aliases and alias moves.

Reviewed by hand (autogenerate proposed the same tables, columns, indexes and keys):

- registered_models: a unique name (the API checks its pattern, 1-100 characters of
  letters, digits and -_.), an id for cursor pagination, and last_version, the counter
  the next registration increments in one UPDATE ... RETURNING (service.registry.service).
- model_versions: primary key (name, version); model_id is ON DELETE CASCADE, so deleting
  a model takes its versions with it. The API refuses that (409) while an alias points at
  one of them, and the aliases' RESTRICT key below refuses it in the database as well.
- model_aliases: primary key (name, alias); (name, version) references model_versions
  ON DELETE RESTRICT.
- alias_moves: the history of every alias (who, when, from which version to which); no
  key to model_versions, since the record outlives the versions it names.
- New tables only: nothing is copied, on SQLite or PostgreSQL. The downgrade drops them,
  and with them every registration (models and jobs are untouched).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_index("ix_registered_models_created_at_id", "registered_models", ["created_at", "id"])
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["name"],
            ["registered_models.name"],
            name="fk_model_versions_name_registered_models",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_model_versions_model_id_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", "version", name="pk_model_versions"),
    )
    op.create_index("ix_model_versions_model_id", "model_versions", ["model_id"])
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["name"],
            ["registered_models.name"],
            name="fk_model_aliases_name_registered_models",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            ["model_versions.name", "model_versions.version"],
            name="fk_model_aliases_version_model_versions",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("name", "alias", name="pk_model_aliases"),
    )
    op.create_table(
        "alias_moves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moved_by", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["name"],
            ["registered_models.name"],
            name="fk_alias_moves_name_registered_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alias_moves"),
    )
    op.create_index("ix_alias_moves_name_alias_id", "alias_moves", ["name", "alias", "id"])


def downgrade() -> None:
    op.drop_index("ix_alias_moves_name_alias_id", table_name="alias_moves")
    op.drop_table("alias_moves")
    op.drop_table("model_aliases")
    op.drop_index("ix_model_versions_model_id", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_index("ix_registered_models_created_at_id", table_name="registered_models")
    op.drop_table("registered_models")
