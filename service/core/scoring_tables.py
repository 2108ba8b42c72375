"""Tables of batch predictions and evaluations: scoring tasks and their result blocks."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.core.states import QUEUED
from service.core.tables import Base, new_id, utcnow
from service.core.tenancy import ProjectScoped


class ScoringTask(ProjectScoped, Base):
    """A model scoring a stored dataset in a worker: a batch prediction (its result in
    scoring_blocks) or an evaluation (its metrics in ``result``). Claimed, leased and
    fenced as jobs are (service.queue.scoring_claims)."""

    __tablename__ = "scoring_tasks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))  # batch_prediction | evaluation
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    # SET NULL: a finished task's result outlives its dataset; a queued one then fails.
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    rows_total: Mapped[int] = mapped_column(BigInteger)
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    block_rows: Mapped[int] = mapped_column(Integer)  # rows per result block, fixed at creation

    attempt: Mapped[int] = mapped_column(Integer, default=0)  # the fencing token
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()

    error: Mapped[str | None] = mapped_column(Text)  # a message for people, never a traceback
    error_code: Mapped[str | None] = mapped_column(String(40))
    result: Mapped[dict[str, Any] | None] = mapped_column()  # an evaluation's metrics

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_scoring_tasks_status_created_at", "status", "created_at"),
        Index("ix_scoring_tasks_model_id", "model_id"),
    )


class ScoringBlock(Base):
    """One block of a batch prediction's result: the probabilities of ``rows`` rows, (rows,
    K) float64 little-endian row-major (service.queue.scoring.encode_block), written with
    the task's progress in one transaction."""

    __tablename__ = "scoring_blocks"

    task_id: Mapped[str] = mapped_column(
        ForeignKey("scoring_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
