"""Tables of the model registry: registered models, their versions, aliases and alias moves."""

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.core.tables import Base, new_id, utcnow
from service.core.tenancy import ProjectScoped, project_column

# Names are a project's own: every key to a registered model is (project, name).
REGISTERED = ["registered_models.project", "registered_models.name"]


class RegisteredModel(ProjectScoped, Base):
    """A name under which models are registered as numbered versions (service.registry)."""

    __tablename__ = "registered_models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    # The highest version number ever handed out: the next registration takes this + 1 in one
    # UPDATE ... RETURNING, so concurrent registrations queue on the row and never share a
    # number; numbers of deleted versions are never reused.
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(16))  # auth.key_id; None: no keys

    __table_args__ = (
        Index("ix_registered_models_created_at_id", "created_at", "id"),
        UniqueConstraint("project", "name", name="uq_registered_models_project_name"),
    )


class ModelVersion(ProjectScoped, Base):
    """Version ``version`` of a registered model: a fitted model. CASCADE from the model:
    deleting a model takes its versions with it (the API refuses while an alias holds one)."""

    __tablename__ = "model_versions"

    project: Mapped[str] = project_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_model_versions_model_id", "model_id"),
        ForeignKeyConstraint(
            ["project", "name"],
            REGISTERED,
            name="fk_model_versions_project_registered_models",
            ondelete="CASCADE",
        ),
    )


class ModelAlias(ProjectScoped, Base):
    """A registered model's alias and the version it points at. RESTRICT: a version an
    alias points at cannot be deleted (nor, through the cascade, its model)."""

    __tablename__ = "model_aliases"

    project: Mapped[str] = project_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        ForeignKeyConstraint(
            ["project", "name"],
            REGISTERED,
            name="fk_model_aliases_project_registered_models",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["project", "name", "version"],
            ["model_versions.project", "model_versions.name", "model_versions.version"],
            name="fk_model_aliases_version_model_versions",
            ondelete="RESTRICT",
        ),
    )


class AliasMove(ProjectScoped, Base):
    """One change of an alias: from_version None is its creation, to_version None its
    deletion. No key to the versions: the record outlives them."""

    __tablename__ = "alias_moves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    alias: Mapped[str] = mapped_column(String(100))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    moved_at: Mapped[datetime] = mapped_column(default=utcnow)
    moved_by: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_alias_moves_name_alias_id", "name", "alias", "id"),
        ForeignKeyConstraint(
            ["project", "name"],
            REGISTERED,
            name="fk_alias_moves_project_registered_models",
            ondelete="CASCADE",
        ),
    )
