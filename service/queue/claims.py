"""The job queue: claiming jobs, leases, progress and checkpoints.

Every function is one short transaction on the ``writes`` sessions of a
``Database`` (on SQLite they begin with BEGIN IMMEDIATE, so writers queue on
the busy timeout instead of failing).

Fencing. ``Job.attempt`` is the fencing token: ``claim_job`` increments it and
every later write about the job is ``WHERE id = :id AND attempt = :attempt AND
status IN ('running', 'cancelling')``. A worker that lost its lease (it
stalled, the sweeper re-queued the job, another worker claimed attempt n + 1)
gets ``None``/``False`` back and nothing it sends is written.

History continuity. ``record_progress`` writes the progress fields and that
stretch of history in one transaction, and a worker flushes its history before
it stores a checkpoint, so the stored history always reaches at least the
checkpoint's epoch. A new attempt resumes from the checkpoint, so the claim
deletes the history rows after the checkpoint's epoch (all of them when there is
none) in the claim transaction: those epochs are run again and their rows
written again, and the history stays 1..N with no gap and no repeat.

How an attempt ends (succeeded, failed, released, expired): service.queue.outcomes.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from engine.history import EpochMetrics
from service.core.database import Database
from service.core.settings import Settings
from service.core.states import CANCELLING, RUNNING
from service.core.tables import Checkpoint, Job, JobHistory, utcnow
from service.queue.fair_claim import claim_fairly
from service.queue.leases import lease_values
from service.queue.results import history_values, progress_values

HELD_STATES = (RUNNING, CANCELLING)  # the states in which a worker holds a job


@dataclass(frozen=True)
class Claim:
    """A job a worker now holds: what it needs to train, and the checkpoint to resume from."""

    job_id: str
    attempt: int  # the fencing token of every later write
    dataset_id: str | None  # None when the dataset was deleted
    model_spec: dict[str, Any]
    training_spec: dict[str, Any]
    checkpoint: bytes | None  # the engine's checkpoint bytes, or None to start afresh
    checkpoint_epoch: int | None
    warm_start: dict[str, Any] | None = None  # {"model_id": ...}: fine-tune that model
    parent_model_id: str | None = None  # None once the parent was deleted (SET NULL)


def fenced(job_id: str, attempt: int) -> ColumnElement[bool]:
    """The WHERE clause of every worker write: this job, this attempt, still held."""
    return and_(Job.id == job_id, Job.attempt == attempt, Job.status.in_(HELD_STATES))


# -- claiming -------------------------------------------------------------------------------


def claim_job(*, database: Database, worker_id: str, settings: Settings) -> Claim | None:
    """Take the fair next queued job (service.queue.fair_claim: the project running fewest
    first, under its running quota; then its oldest job), or None when there is none."""
    returning = (Job.id, Job.attempt, Job.dataset_id, Job.model_spec, Job.training_spec)
    returning += (Job.warm_start, Job.parent_model_id)
    with database.writes() as session, session.begin():
        row = claim_fairly(
            session,
            is_sqlite=database.is_sqlite,
            worker_id=worker_id,
            settings=settings,
            returning=returning,
        )
        if row is None:
            return None
        checkpoint = None
        if row.attempt > 1:  # a first attempt has no checkpoint and no history to rewind
            checkpoint = session.execute(
                select(Checkpoint.epoch, Checkpoint.data).where(Checkpoint.job_id == row.id)
            ).one_or_none()
            _rewind_history(session, row.id, checkpoint.epoch if checkpoint else 0)
        return Claim(
            job_id=row.id,
            attempt=row.attempt,
            dataset_id=row.dataset_id,
            model_spec=row.model_spec,
            training_spec=row.training_spec,
            checkpoint=checkpoint.data if checkpoint else None,
            checkpoint_epoch=checkpoint.epoch if checkpoint else None,
            warm_start=row.warm_start,
            parent_model_id=row.parent_model_id,
        )


def _rewind_history(session: Session, job_id: str, epoch: int) -> None:
    """Drop the epochs after ``epoch`` (the new attempt runs them again); progress follows."""
    session.execute(delete(JobHistory).where(JobHistory.job_id == job_id, JobHistory.epoch > epoch))
    last = session.execute(
        select(JobHistory.train_loss, JobHistory.val_loss).where(
            JobHistory.job_id == job_id, JobHistory.epoch == epoch
        )
    ).one_or_none()
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(
            epoch=epoch,
            train_loss=last.train_loss if last else None,
            val_loss=last.val_loss if last else None,
        )
    )


# -- while a job runs -----------------------------------------------------------------------


def heartbeat(*, database: Database, job_id: str, attempt: int, settings: Settings) -> str | None:
    """Renew the lease; the job's status (running or cancelling), or None if the lease is lost."""
    with database.writes() as session, session.begin():
        return _renew(session, job_id, attempt, settings, {})


def _renew(
    session: Session, job_id: str, attempt: int, settings: Settings, values: dict[str, Any]
) -> str | None:
    statement = (
        update(Job).where(fenced(job_id, attempt)).values(**lease_values(settings), **values)
    )
    return session.scalar(statement.returning(Job.status))


def record_progress(
    *,
    database: Database,
    job_id: str,
    attempt: int,
    epochs: Sequence[EpochMetrics],
    best_epoch: int | None,
    elapsed_seconds: float,
    settings: Settings,
) -> str | None:
    """Write a stretch of history and the progress fields in one transaction; renews the lease.

    Returns the job's status (so the worker learns of a cancel), or None when
    fenced out, in which case nothing is written.
    """
    values: dict[str, Any] = {"best_epoch": best_epoch, "elapsed_seconds": elapsed_seconds}
    if epochs:
        values.update(progress_values(epochs[-1]))
    with database.writes() as session, session.begin():
        status = _renew(session, job_id, attempt, settings, values)
        if status is None:
            return None  # nothing was updated; leaving the block commits nothing
        if epochs:
            rows = [{**history_values(m), "job_id": job_id, "attempt": attempt} for m in epochs]
            session.execute(insert(JobHistory), rows)
        return status


def store_checkpoint(
    *, database: Database, job_id: str, attempt: int, epoch: int, data: bytes
) -> bool:
    """Replace the job's checkpoint with ``data`` (the state after ``epoch``); False if fenced."""
    with database.writes() as session, session.begin():
        if not _hold(session, job_id, attempt):
            return False
        values = {"attempt": attempt, "epoch": epoch, "data": data, "created_at": utcnow()}
        updated = session.execute(
            update(Checkpoint).where(Checkpoint.job_id == job_id).values(values)
        )
        if updated.rowcount == 0:
            session.execute(insert(Checkpoint).values(job_id=job_id, **values))
        return True


def _hold(session: Session, job_id: str, attempt: int) -> bool:
    """Lock the job's row if this attempt still holds it (SQLite: BEGIN IMMEDIATE locked it)."""
    held = select(Job.id).where(fenced(job_id, attempt)).with_for_update()
    return session.scalar(held) is not None
