"""The end of an attempt: a job succeeds, fails, is released (SIGTERM) or its lease expires.

Each is one short transaction, fenced as every write of service.queue.claims is: a worker
that lost its lease changes nothing.

Decisions the brief left open:

* A run that ends ``diverged`` is ``failed`` (``stop_reason`` "diverged",
  ``error_code`` "diverged", ``error`` the engine's message) with no model: its
  parameters are those of the last finite epoch, not a trained model.
* A job that is ``cancelling`` when its fit ends is ``cancelled`` even if the
  fit finished on its own: once cancelling, a job only becomes cancelled. It keeps its
  model (the best epoch's parameters when the cancel stopped training, engine.training),
  whose ``stop_reason`` is ``cancelled`` as the job's is.
  ``fail_job`` still records ``failed`` for a cancelling job (the error is the
  more useful fact).
* ``release_job`` (SIGTERM) keeps the attempt count; only a lease that expires
  at ``attempt >= max_attempts`` fails a job as ``worker_lost``.
* An ended job keeps ``worker`` (who ran its last attempt) and clears its
  lease; a job queued again clears both.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    and_,
    case,
    insert,
    select,
    update,
)

from engine import FitResult
from engine.history import EpochMetrics
from service.core.database import Database
from service.core.settings import Settings
from service.core.states import CANCELLED, CANCELLING, FAILED, QUEUED, RUNNING, SUCCEEDED
from service.core.tables import Job, JobHistory, Model, utcnow
from service.queue.claims import HELD_STATES, fenced
from service.queue.leases import moment, worker_lost_error
from service.queue.notify import notify_job_queued
from service.queue.results import history_values, model_parts, model_values, progress_values


def complete_job(
    *,
    database: Database,
    job_id: str,
    attempt: int,
    result: FitResult,
    epochs: Sequence[EpochMetrics] = (),
    elapsed_seconds: float | None = None,
    dataset_id: str | None = None,
) -> bool:
    """Finish the job from its FitResult; a succeeded job gets its Model row. False if fenced out.

    ``epochs``: the history not yet written (the worker's buffer), written in the same
    transaction, so a finished job always has its whole history and the end of a short
    job costs one write rather than two.
    ``dataset_id`` (the claim's): the model's .npz is made before the transaction.
    """
    # A cancelled run keeps a model too (the engine kept its best epoch's parameters): only
    # a diverged run, or one that trained no epoch, leaves none.
    keeps_model = result.stop_reason != "diverged" and bool(result.history)
    parts = model_parts(job_id, dataset_id, result) if dataset_id and keeps_model else None
    now = utcnow()
    with database.writes() as session, session.begin():
        # Plain rows and Core statements, no ORM objects to load or flush: on SQLite every
        # other writer waits for this transaction, so it does no more than it must.
        job = session.execute(
            select(Job.id, Job.status, Job.dataset_id, Job.model_type, Job.project)
            .where(fenced(job_id, attempt))
            .with_for_update()
        ).first()
        if job is None:
            return False
        if epochs:
            rows = [{**history_values(m), "job_id": job_id, "attempt": attempt} for m in epochs]
            session.execute(insert(JobHistory), rows)
        last = result.history[-1] if result.history else None
        values: dict[str, Any] = {
            "stop_reason": result.stop_reason,
            "best_epoch": result.best_epoch,
            "finished_at": now,
            "lease_expires_at": None,  # the worker stays named: it ran the last attempt
            "updated_at": now,
        }
        if elapsed_seconds is not None:
            values["elapsed_seconds"] = elapsed_seconds
        if last is not None:
            values.update(progress_values(last))
        if job.status == CANCELLING or result.stop_reason == "cancelled":
            values.update(status=CANCELLED, stop_reason="cancelled")
        elif result.stop_reason == "diverged":
            values.update(status=FAILED, error=result.message, error_code="diverged")
        else:
            values.update(status=SUCCEEDED)
        session.execute(
            update(Job).where(Job.id == job_id).values(values),
            execution_options={"synchronize_session": False},  # no Job objects loaded
        )
        if keeps_model and values["status"] in (SUCCEEDED, CANCELLED):
            model = model_values(job, result, parts)
            # A cancel seen only here (the fit ended on its own meanwhile) is the model's too.
            model["metrics"] = {**model["metrics"], "stop_reason": values["stop_reason"]}
            session.execute(insert(Model).values(model))
        return True


def fail_job(*, database: Database, job_id: str, attempt: int, error: str, code: str) -> bool:
    """Mark the job failed with a message for people (never a traceback); False if fenced out."""
    now = utcnow()
    values = {
        "status": FAILED,
        "error": error,
        "error_code": code,
        "finished_at": now,
        "lease_expires_at": None,
        "updated_at": now,
    }
    with database.writes() as session, session.begin():
        failed = session.execute(update(Job).where(fenced(job_id, attempt)).values(values))
        return failed.rowcount == 1


def release_job(*, database: Database, job_id: str, attempt: int) -> bool:
    """Give the job back (SIGTERM): queued again, or cancelled if it was cancelling.

    The checkpoint stays, so the next attempt resumes from it. A graceful release is
    not a lost worker: given back on its last allowed attempt, the job gets one more,
    so the next claim never takes ``attempt`` past ``max_attempts``. False if fenced out.
    """
    now = utcnow()
    was_cancelling = Job.status == CANCELLING
    values = {
        "status": case((was_cancelling, CANCELLED), else_=QUEUED),
        "stop_reason": case((was_cancelling, "cancelled"), else_=Job.stop_reason),
        "finished_at": case((was_cancelling, moment(now)), else_=Job.finished_at),
        "worker": case((was_cancelling, Job.worker), else_=None),  # queued jobs have no worker
        "max_attempts": case(
            (and_(~was_cancelling, Job.attempt >= Job.max_attempts), Job.attempt + 1),
            else_=Job.max_attempts,
        ),
        "lease_expires_at": None,
        "updated_at": now,
    }
    with database.writes() as session, session.begin():
        status = session.scalar(
            update(Job).where(fenced(job_id, attempt)).values(values).returning(Job.status)
        )
        if status == QUEUED:
            notify_job_queued(session)
        return status is not None


def sweep_expired_leases(*, database: Database, settings: Settings) -> int:
    """Settle the jobs whose worker went silent; returns how many changed.

    cancelling -> cancelled; running at attempt >= max_attempts -> failed
    (worker_lost); running otherwise -> queued, to resume from its checkpoint.
    Each UPDATE re-checks its WHERE on the row it changes, so concurrent sweeps
    (and a worker renewing its lease meanwhile) never settle a job twice.
    """
    now = utcnow()
    expired = and_(Job.lease_expires_at < now, Job.status.in_(HELD_STATES))
    released = {"lease_expires_at": None, "updated_at": now}  # ended jobs keep their worker
    with database.writes() as session, session.begin():
        cancelled = session.execute(
            update(Job)
            .where(expired, Job.status == CANCELLING)
            .values(status=CANCELLED, stop_reason="cancelled", finished_at=now, **released)
        ).rowcount
        failed = session.execute(
            update(Job)
            .where(expired, Job.status == RUNNING, Job.attempt >= Job.max_attempts)
            .values(
                status=FAILED,
                error=worker_lost_error(Job, "job", settings),
                error_code="worker_lost",
                finished_at=now,
                **released,
            )
        ).rowcount
        requeued = session.execute(
            update(Job)
            .where(expired, Job.status == RUNNING, Job.attempt < Job.max_attempts)
            .values(status=QUEUED, worker=None, **released)
        ).rowcount
        if requeued:
            notify_job_queued(session)
        return cancelled + failed + requeued
