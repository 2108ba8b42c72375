"""Projects: tenants with their own rows, API keys kept in the database, an audit log.

Reviewed by hand (autogenerate proposed the same tables, columns, indexes and keys):

- projects (quotas; the default project is inserted), api_keys (SHA-256 of each key, its
  project and role, revoked_at) and audit_events are new.
- datasets, jobs, models, sweeps and scoring_tasks gain `project`, NOT NULL with the server
  default 'default': every row from before belongs to the default project, where the keys
  of BACKPROP_API_KEYS keep working. Added in place (no table is copied, on SQLite either).
  Dataset dedup becomes unique per project; jobs gain an index (project, status) for the
  quotas and the fair claim.
- idempotency_keys and the four registry tables get `project` inside their keys (a name
  or an Idempotency-Key is a project's own). Their keys change, which SQLite cannot alter,
  so each is rebuilt the same way on both databases and offline: its rows are copied to a
  plain table, it is dropped, made again with the new keys, and the rows copied back (as
  the default project's). These tables hold a few rows per model, not the data.
- The downgrade rebuilds them without `project`; it fails (a duplicate key) when two
  projects registered the same name, rather than merge them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT = "default"
ADDED_IN_PLACE = ("datasets", "jobs", "models", "sweeps", "scoring_tasks")


def project_column(primary_key: bool = False) -> sa.Column:
    return sa.Column(
        "project",
        sa.String(length=64),
        server_default=DEFAULT,
        nullable=False,
        primary_key=primary_key,
    )


# -- the rebuilt tables, as they are after (with=True) and before (with=False) -------------
def idempotency_keys(with_project: bool) -> list:
    keys = ["project", "key"] if with_project else ["key"]
    return [
        *([project_column()] if with_project else []),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_idempotency_keys_job_id_jobs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(*keys, name="pk_idempotency_keys"),
    ]


def registered_models(with_project: bool) -> list:
    unique = (
        sa.UniqueConstraint("project", "name", name="uq_registered_models_project_name")
        if with_project
        else sa.UniqueConstraint("name", name="uq_registered_models_name")
    )
    return [
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=16), nullable=True),
        *([project_column()] if with_project else []),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        unique,
    ]


def _to_registered(table: str, with_project: bool) -> sa.ForeignKeyConstraint:
    if with_project:
        return sa.ForeignKeyConstraint(
            ["project", "name"],
            ["registered_models.project", "registered_models.name"],
            name=f"fk_{table}_project_registered_models",
            ondelete="CASCADE",
        )
    return sa.ForeignKeyConstraint(
        ["name"],
        ["registered_models.name"],
        name=f"fk_{table}_name_registered_models",
        ondelete="CASCADE",
    )


def model_versions(with_project: bool) -> list:
    keys = ["project", "name", "version"] if with_project else ["name", "version"]
    return [
        *([project_column()] if with_project else []),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_model_versions_model_id_models",
            ondelete="CASCADE",
        ),
        _to_registered("model_versions", with_project),
        sa.PrimaryKeyConstraint(*keys, name="pk_model_versions"),
    ]


def model_aliases(with_project: bool) -> list:
    scope = ["project"] if with_project else []
    return [
        *([project_column()] if with_project else []),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=16), nullable=True),
        _to_registered("model_aliases", with_project),
        sa.ForeignKeyConstraint(
            [*scope, "name", "version"],
            [f"model_versions.{column}" for column in (*scope, "name", "version")],
            name="fk_model_aliases_version_model_versions",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint(*scope, "name", "alias", name="pk_model_aliases"),
    ]


def alias_moves(with_project: bool) -> list:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moved_by", sa.String(length=16), nullable=True),
        *([project_column()] if with_project else []),
        _to_registered("alias_moves", with_project),
        sa.PrimaryKeyConstraint("id", name="pk_alias_moves"),
    ]


# Parents before children; the indexes each table has besides its keys.
REBUILT = {
    "idempotency_keys": (idempotency_keys, []),
    "registered_models": (
        registered_models,
        [("ix_registered_models_created_at_id", ["created_at", "id"])],
    ),
    "model_versions": (model_versions, [("ix_model_versions_model_id", ["model_id"])]),
    "model_aliases": (model_aliases, []),
    "alias_moves": (alias_moves, [("ix_alias_moves_name_alias_id", ["name", "alias", "id"])]),
}


def rebuild(with_project: bool) -> None:
    """Copy each table's rows aside, make it again with(out) project, copy them back."""
    for table, (columns_of, _) in REBUILT.items():
        old = columns_of(not with_project)
        plain = [
            sa.Column(c.name, c.type, nullable=c.nullable) for c in old if isinstance(c, sa.Column)
        ]
        names = ", ".join(c.name for c in plain)
        op.create_table(f"rebuild_{table}", *plain)
        op.execute(f"INSERT INTO rebuild_{table} ({names}) SELECT {names} FROM {table}")
    for table, (_, indexes) in reversed(REBUILT.items()):  # children first
        for index, _ in indexes:
            op.drop_index(index, table_name=table)
        op.drop_table(table)
    for table, (columns_of, indexes) in REBUILT.items():
        new = columns_of(with_project)
        op.create_table(table, *new)
        for index, columns in indexes:
            op.create_index(index, table, columns)
        before = {c.name for c in columns_of(not with_project) if isinstance(c, sa.Column)}
        names = ", ".join(c.name for c in new if isinstance(c, sa.Column) and c.name in before)
        op.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM rebuild_{table}")
        op.drop_table(f"rebuild_{table}")


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("max_stored_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_queued_jobs", sa.Integer(), nullable=True),
        sa.Column("max_running_jobs", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_projects"),
    )
    op.execute("INSERT INTO projects (name, created_at) VALUES ('default', CURRENT_TIMESTAMP)")
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=16), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        sa.UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),
    )
    op.create_index("ix_api_keys_project_created_at", "api_keys", ["project", "created_at"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        project_column(),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_project_id", "audit_events", ["project", "id"])
    for table in ADDED_IN_PLACE:
        with op.batch_alter_table(table, recreate="never") as batch_op:
            batch_op.add_column(project_column())
    with op.batch_alter_table("datasets", recreate="never") as batch_op:
        batch_op.drop_index("uq_datasets_sha256_label_overrides")
        batch_op.create_index(
            "uq_datasets_project_sha256_label_overrides",
            ["project", "sha256", "label", "overrides"],
            unique=True,
        )
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.create_index("ix_jobs_project_status", ["project", "status"])
    rebuild(with_project=True)


def downgrade() -> None:
    rebuild(with_project=False)
    with op.batch_alter_table("jobs", recreate="never") as batch_op:
        batch_op.drop_index("ix_jobs_project_status")
    with op.batch_alter_table("datasets", recreate="never") as batch_op:
        batch_op.drop_index("uq_datasets_project_sha256_label_overrides")
        batch_op.create_index(
            "uq_datasets_sha256_label_overrides", ["sha256", "label", "overrides"], unique=True
        )
    for table in ADDED_IN_PLACE:
        with op.batch_alter_table(table, recreate="never") as batch_op:
            batch_op.drop_column("project")
    op.drop_index("ix_audit_events_project_id", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_api_keys_project_created_at", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("projects")
