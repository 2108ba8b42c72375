"""The scoring queue: claiming scoring tasks, leases, result blocks, and how a task ends.

A scoring task (a batch prediction or an evaluation of a stored dataset) is claimed,
leased and fenced exactly as a job is (service.queue.claims): ``claim_task`` takes the
oldest queued task with SKIP LOCKED on PostgreSQL, in one UPDATE inside the SQLite
writer's turn (BEGIN IMMEDIATE) on SQLite, and increments ``attempt``, the fencing
token; every later write is ``WHERE id = :id AND attempt = :attempt AND status =
'running'``, so a worker that lost its lease writes nothing.

A batch prediction's block and its progress go in one transaction (``store_block``):
``rows_done`` always equals the rows of the blocks stored, and a new attempt resumes at
block ``rows_done // block_rows``. An evaluation keeps its per-row probabilities in the
worker's memory only, so a new attempt starts it over (rows_done back to 0).
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, update

from service.core.database import Database
from service.core.settings import Settings
from service.core.states import FAILED, QUEUED, RUNNING, SUCCEEDED
from service.core.tables import ScoringBlock, ScoringTask, utcnow
from service.queue.leases import claim_oldest, lease_values, worker_lost_error
from service.queue.notify import notify_job_queued

BATCH_PREDICTION, EVALUATION = "batch_prediction", "evaluation"
SCORING_KINDS = (BATCH_PREDICTION, EVALUATION)


@dataclass(frozen=True)
class TaskClaim:
    """A scoring task a worker now holds."""

    task_id: str
    attempt: int  # the fencing token of every later write
    kind: str
    model_id: str
    dataset_id: str | None  # None when the dataset was deleted
    rows_total: int
    rows_done: int  # where this attempt starts (a batch prediction's blocks so far)
    block_rows: int


def fenced(task_id: str, attempt: int) -> ColumnElement[bool]:
    """The WHERE clause of every worker write: this task, this attempt, still running."""
    return and_(
        ScoringTask.id == task_id, ScoringTask.attempt == attempt, ScoringTask.status == RUNNING
    )


def claim_task(*, database: Database, worker_id: str, settings: Settings) -> TaskClaim | None:
    """Take the oldest queued scoring task (created_at, id), or None when there is none."""
    statement = claim_oldest(
        ScoringTask, is_sqlite=database.is_sqlite, worker_id=worker_id, settings=settings
    )
    T = ScoringTask
    returning = (T.id, T.attempt, T.kind, T.model_id, T.dataset_id, T.rows_total, T.rows_done)
    with database.writes() as session, session.begin():
        row = session.execute(statement.returning(*returning, T.block_rows)).one_or_none()
        if row is None:
            return None
        rows_done = row.rows_done
        if row.kind == EVALUATION and rows_done:  # its probabilities died with the worker
            session.execute(update(T).where(T.id == row.id).values(rows_done=0))
            rows_done = 0
        return TaskClaim(
            task_id=row.id,
            attempt=row.attempt,
            kind=row.kind,
            model_id=row.model_id,
            dataset_id=row.dataset_id,
            rows_total=row.rows_total,
            rows_done=rows_done,
            block_rows=row.block_rows,
        )


def renew_task(*, database: Database, task_id: str, attempt: int, settings: Settings) -> bool:
    """Renew the lease; False when it is lost (another attempt owns the task)."""
    with database.writes() as session, session.begin():
        statement = (
            update(ScoringTask).where(fenced(task_id, attempt)).values(lease_values(settings))
        )
        return session.execute(statement).rowcount == 1


def store_block(
    *,
    database: Database,
    task_id: str,
    attempt: int,
    index: int,
    rows: int,
    data: bytes,
    settings: Settings,
) -> bool:
    """Block ``index`` of a batch prediction's result and the progress, in one transaction;
    renews the lease. False (and nothing written) when fenced out."""
    progress = {"rows_done": ScoringTask.rows_done + rows, **lease_values(settings)}
    with database.writes() as session, session.begin():
        held = session.execute(
            update(ScoringTask).where(fenced(task_id, attempt)).values(progress)
        ).rowcount
        if held != 1:
            return False
        session.execute(
            insert(ScoringBlock).values(task_id=task_id, index=index, rows=rows, data=data)
        )
        return True


def record_rows(
    *, database: Database, task_id: str, attempt: int, rows_done: int, settings: Settings
) -> bool:
    """An evaluation's progress (rows scored so far); renews the lease. False if fenced out."""
    values = {"rows_done": rows_done, **lease_values(settings)}
    with database.writes() as session, session.begin():
        statement = update(ScoringTask).where(fenced(task_id, attempt)).values(values)
        return session.execute(statement).rowcount == 1


def complete_task(
    *, database: Database, task_id: str, attempt: int, result: dict[str, Any] | None
) -> bool:
    """succeeded, with an evaluation's metrics (``result``); False if fenced out."""
    now = utcnow()
    values = {
        "status": SUCCEEDED,
        "result": result,
        "finished_at": now,
        "lease_expires_at": None,
        "updated_at": now,
    }
    with database.writes() as session, session.begin():
        statement = update(ScoringTask).where(fenced(task_id, attempt)).values(values)
        return session.execute(statement).rowcount == 1


def fail_task(*, database: Database, task_id: str, attempt: int, error: str, code: str) -> bool:
    """failed, with a message for people (never a traceback); False if fenced out."""
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
        statement = update(ScoringTask).where(fenced(task_id, attempt)).values(values)
        return session.execute(statement).rowcount == 1


def release_task(*, database: Database, task_id: str, attempt: int) -> bool:
    """Give the task back (SIGTERM): queued again, its blocks kept; False if fenced out.
    A graceful release is not a lost worker: it does not use up an attempt."""
    values = {
        "status": QUEUED,
        "worker": None,
        "lease_expires_at": None,
        "max_attempts": ScoringTask.max_attempts + 1,
        "updated_at": utcnow(),
    }
    with database.writes() as session, session.begin():
        statement = update(ScoringTask).where(fenced(task_id, attempt)).values(values)
        released = session.execute(statement).rowcount == 1
        if released:
            notify_job_queued(session)
        return released


def sweep_expired_tasks(*, database: Database, settings: Settings) -> int:
    """Settle the tasks whose worker went silent: queued again (to resume), or failed as
    worker_lost on their last allowed attempt. Returns how many changed."""
    now = utcnow()
    T = ScoringTask
    expired = and_(T.lease_expires_at < now, T.status == RUNNING)
    released = {"lease_expires_at": None, "updated_at": now}
    with database.writes() as session, session.begin():
        failed = session.execute(
            update(T)
            .where(expired, T.attempt >= T.max_attempts)
            .values(
                status=FAILED,
                error=worker_lost_error(T, "task", settings),
                error_code="worker_lost",
                finished_at=now,
                **released,
            )
        ).rowcount
        requeued = session.execute(
            update(T)
            .where(expired, T.attempt < T.max_attempts)
            .values(status=QUEUED, worker=None, **released)
        ).rowcount
        if requeued:
            notify_job_queued(session)
        return failed + requeued
