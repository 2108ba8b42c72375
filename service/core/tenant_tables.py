"""Tables of tenancy: projects and their quotas, API keys, and the audit log."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.core.tables import Base, utcnow
from service.core.tenancy import PROJECT_MAX_LENGTH, ProjectScoped


class Project(Base):
    """A tenant: its keys see only its rows. A quota left NULL takes the service's default
    (BACKPROP_PROJECT_MAX_*); the default project exists from migration 0012 on."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(PROJECT_MAX_LENGTH), primary_key=True)
    max_stored_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_queued_jobs: Mapped[int | None] = mapped_column(Integer)
    max_running_jobs: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A key made by `backprop keys create` or the admin API, kept as its SHA-256 only.

    Keys are 256 random bits, so an unsalted digest is as good as a slow hash: nothing can
    be guessed from it. ``key_id`` is the digest's first hex digits, as for keys from the
    environment (service.core.auth.key_id): the name jobs, versions and the audit log use.
    """

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    project: Mapped[str] = mapped_column(String(PROJECT_MAX_LENGTH))
    role: Mapped[str] = mapped_column(String(16))  # reader | trainer | admin
    name: Mapped[str | None] = mapped_column(String(200))  # what it is for, said by its maker
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(16))  # key id; None: the CLI
    revoked_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_api_keys_project_created_at", "project", "created_at"),)


class AuditEvent(ProjectScoped, Base):
    """Who (a key id) did what to which row, and when: one row per change the API made."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    key_id: Mapped[str | None] = mapped_column(String(16))  # None: the API has no keys
    action: Mapped[str] = mapped_column(String(40))  # e.g. job.cancel, key.revoke
    target: Mapped[str] = mapped_column(String(200))  # the row's id (or name)
    detail: Mapped[dict[str, Any] | None] = mapped_column()

    __table_args__ = (Index("ix_audit_events_project_id", "project", "id"),)
