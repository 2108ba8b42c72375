"""The database tables (SQLAlchemy 2 declarative). Alembic migrations create them.

datasets ─< dataset_chunks        the uploaded matrix, in binary chunks
datasets ─< jobs ─< job_history   one row per epoch, written with the progress fields
                 ─  checkpoints   the latest engine checkpoint of a job
                 ─  models        the fitted model of a succeeded job
models ─< jobs                    fine-tuning: a job warm-started from a model (lineage)
datasets ─< sweeps ─< jobs        a hyperparameter search; each trial is a job
idempotency_keys                  replays of POST /v1/jobs
models ─< scoring_tasks ─< scoring_blocks   batch predictions and evaluations of a dataset
registered_models ─< model_versions >─ models      a name's numbered versions of models
registered_models ─< model_aliases (-> a version)   e.g. "production" -> version 3
registered_models ─< alias_moves                    who moved which alias, from what to what
projects ─< api_keys, audit_events                  tenants: keys, quotas, who did what

Every table a caller names rows of carries `project` (service.core.tenancy.ProjectScoped):
a request reads and writes only its own project's rows.
"""

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.core.states import QUEUED
from service.core.tenancy import ProjectScoped, project_column

# Constraint names are stable across databases, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


ID_MAX_LENGTH = 32  # ids are uuid4 hex (new_id)


def new_id() -> str:
    return uuid.uuid4().hex


def could_be_id(value: str) -> bool:
    """False for strings no row can have as id; PostgreSQL refuses NUL in text outright."""
    return 0 < len(value) <= ID_MAX_LENGTH and "\x00" not in value


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use service.core.tables.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Dataset(ProjectScoped, Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200))  # the label column's name
    features: Mapped[list[Any]] = mapped_column()  # feature column names, in order
    # One entry per column of the file: name, role, type, kind, missing, distinct, levels,
    # top_levels, min, max, mean, warning (service.datasets.reader_summary).
    schema: Mapped[list[Any]] = mapped_column()
    label_type: Mapped[str] = mapped_column(String(20))  # integer, number, string, boolean
    rows: Mapped[int] = mapped_column(BigInteger)
    classes: Mapped[list[Any]] = mapped_column()  # sorted label values
    class_counts: Mapped[dict[str, Any]] = mapped_column()  # str(label) -> rows
    sha256: Mapped[str] = mapped_column(String(64))  # of the uploaded bytes
    format: Mapped[str] = mapped_column(String(20))  # csv or parquet
    size_bytes: Mapped[int] = mapped_column(BigInteger)  # uploaded bytes
    # SHA-256 of the upload's categorical= and ignore= (service.datasets.service), "" for none.
    overrides: Mapped[str] = mapped_column(String(64), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # The same bytes read the same way (label column, categorical=, ignore=) are the
        # same dataset, within one project (dedup never crosses projects).
        Index(
            "uq_datasets_project_sha256_label_overrides",
            "project",
            "sha256",
            "label",
            "overrides",
            unique=True,
        ),
        Index("ix_datasets_created_at_id", "created_at", "id"),
    )


class DatasetChunk(Base):
    """A slice of a dataset's stored arrays: part "X" (float64 rows) or "y" (int32 classes)."""

    __tablename__ = "dataset_chunks"

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[str] = mapped_column(String(8), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Sweep(ProjectScoped, Base):
    """A search over hyperparameters: one child job per trial (Job.sweep_id, Job.trial).

    Its status, counts and leaderboard are derived from the children when read.
    """

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # SET NULL, as for jobs: the sweep's record outlives its dataset.
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    model_spec: Mapped[dict[str, Any]] = mapped_column()  # the base ModelSpec, complete
    training_spec: Mapped[dict[str, Any]] = mapped_column()  # the base TrainingSpec, complete
    search: Mapped[dict[str, Any]] = mapped_column()  # {"strategy", "space", "n_trials", "seed"}
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_sweeps_created_at_id", "created_at", "id"),)


class Job(ProjectScoped, Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # SET NULL: a dataset may be deleted once no live job needs it; finished jobs stay.
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    model_type: Mapped[str] = mapped_column(String(40))
    model_spec: Mapped[dict[str, Any]] = mapped_column()
    training_spec: Mapped[dict[str, Any]] = mapped_column()

    # The queue: attempt is the fencing token; a worker's writes name the attempt it holds.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column()

    # Progress, updated in the same transaction as the history rows.
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    epochs: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    train_accuracy: Mapped[float | None] = mapped_column(Float)  # NULL before 0011
    val_accuracy: Mapped[float | None] = mapped_column(Float)  # NULL without a validation split
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    elapsed_seconds: Mapped[float] = mapped_column(Float, default=0.0)

    stop_reason: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)  # a message for people, never a traceback
    error_code: Mapped[str | None] = mapped_column(String(40))  # e.g. worker_lost

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # A trial of a sweep. SET NULL: deleting a sweep's record leaves its jobs and their
    # models standing (clients may hold their ids); the trial values stay on the job.
    sweep_id: Mapped[str | None] = mapped_column(ForeignKey("sweeps.id", ondelete="SET NULL"))
    trial: Mapped[dict[str, Any] | None] = mapped_column()  # the trial's values, by dimension
    # What the job was told about its data when created (e.g. columns left out): strings.
    warnings: Mapped[list[Any] | None] = mapped_column()

    # Who submitted it: service.core.auth.key_id of the API key (never the key); None when the
    # API has no keys. Queued jobs are counted per key (BACKPROP_MAX_QUEUED_JOBS_PER_KEY).
    api_key_id: Mapped[str | None] = mapped_column(String(16))

    # A warm start (fine-tuning): the request's {"model_id": ...}, kept as asked, and the
    # parent model while it exists. SET NULL: the child's record outlives its parent, and
    # `warm_start` still says it was fine-tuned (the worker fails a job whose parent went).
    # use_alter: models refer to jobs too; the cycle is broken for create/drop ordering.
    warm_start: Mapped[dict[str, Any] | None] = mapped_column()
    parent_model_id: Mapped[str | None] = mapped_column(
        ForeignKey("models.id", ondelete="SET NULL", use_alter=True)
    )

    __table_args__ = (
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_parent_model_id", "parent_model_id"),
        Index("ix_jobs_created_at_id", "created_at", "id"),
        Index("ix_jobs_dataset_id", "dataset_id"),
        Index("ix_jobs_sweep_id", "sweep_id"),
        Index("ix_jobs_api_key_id_status", "api_key_id", "status"),
        # A project's queued and running jobs: its quotas, and the fair claim's counts.
        Index("ix_jobs_project_status", "project", "status"),
        # The fair claim's tie-break: a project's latest job start (migration 0013).
        Index("ix_jobs_project_started_at", "project", "started_at"),
    )


class JobHistory(Base):
    """One epoch of a job: the engine's EpochMetrics (NaN stored as NULL)."""

    __tablename__ = "job_history"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)  # which attempt wrote it
    train_loss: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    train_accuracy: Mapped[float | None] = mapped_column(Float)
    val_accuracy: Mapped[float | None] = mapped_column(Float)
    grad_norm: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)


class Checkpoint(Base):
    """The latest engine checkpoint of a job, for resuming after a lost worker."""

    __tablename__ = "checkpoints"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(ProjectScoped, Base):
    """The fitted model of a succeeded job: the engine's portable .npz and its summary."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    model_type: Mapped[str] = mapped_column(String(40))
    metrics: Mapped[dict[str, Any]] = mapped_column()  # final losses, accuracies, best epoch
    # engine.evaluation.evaluate_fit: accuracy, log-loss, ROC AUC, curves... NULL before 0007
    evaluation: Mapped[dict[str, Any] | None] = mapped_column()
    diagnostics: Mapped[dict[str, Any]] = mapped_column()
    artifact: Mapped[bytes] = mapped_column(LargeBinary)  # engine.save() bytes
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_models_created_at_id", "created_at", "id"),)


class IdempotencyKey(ProjectScoped, Base):
    """The first response to a POST with an Idempotency-Key, replayed to retries: the same
    key in two projects is two keys."""

    __tablename__ = "idempotency_keys"

    project: Mapped[str] = project_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# A model's later life lives in modules of their own (this one would pass 400 lines); imported
# here so that Base.metadata, and so Alembic and every "from service.core.tables import", has
# them all.
from service.core.registry_tables import AliasMove, ModelAlias, ModelVersion, RegisteredModel  # noqa: E402
from service.core.scoring_tables import ScoringBlock, ScoringTask  # noqa: E402
from service.core.tenant_tables import ApiKey, AuditEvent, Project  # noqa: E402

__all__ = [
    "AliasMove",
    "ApiKey",
    "AuditEvent",
    "ModelAlias",
    "ModelVersion",
    "Project",
    "RegisteredModel",
    "ScoringBlock",
    "ScoringTask",
]
