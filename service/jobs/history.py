"""A job's loss history: pages of epochs, down-sampled curves, and what the events stream polls.

Every epoch a worker runs is one job_history row (service.queue.claims writes them);
these read them back, fast enough for a page of 10,000 points.
"""

from typing import Any, NamedTuple

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from service.core.json_values import finite_or_none
from service.core.states import (
    TERMINAL_STATES,
)
from service.core.tables import Job, JobHistory, could_be_id
from service.jobs.public import job_public
from service.jobs.schemas import HistoryPoint, JobPublic
from service.jobs.service import get_job, model_id_of

HISTORY_DEFAULT_LIMIT = 1_000  # points per history page when not down-sampling


HISTORY_MAX_LIMIT = 10_000


HISTORY_MIN_POINTS = 3  # first, last and best always fit


EVENT_BATCH = 1_000  # history rows one events poll reads at most


class HistoryPage(NamedTuple):
    job_id: str
    points: list[HistoryPoint]
    next_since_epoch: int | None


EPOCH_CEILING = 2**31 - 1  # job_history.epoch is a 32-bit INTEGER: no bound beyond it


# A history point's columns, read as plain rows: building ORM objects for a page of 1,000
# epochs cost more than the query itself.
POINT_COLUMNS = (
    JobHistory.epoch,
    JobHistory.train_loss,
    JobHistory.val_loss,
    JobHistory.train_accuracy,
    JobHistory.val_accuracy,
    JobHistory.grad_norm,
    JobHistory.seconds,
)


def history_point(row: JobHistory | Row) -> HistoryPoint:
    """A point from a JobHistory row, or a row of POINT_COLUMNS."""
    return HistoryPoint(
        epoch=row.epoch,
        train_loss=finite_or_none(row.train_loss),
        val_loss=finite_or_none(row.val_loss),
        train_accuracy=finite_or_none(row.train_accuracy),
        val_accuracy=finite_or_none(row.val_accuracy),
        grad_norm=finite_or_none(row.grad_norm),
        seconds=finite_or_none(row.seconds),
    )


def job_history(
    *,
    session: Session,
    job_id: str,
    since_epoch: int = 0,
    max_points: int | None = None,
    limit: int | None = None,
) -> HistoryPage:
    """The epochs after ``since_epoch``: a page of ``limit`` rows, or a down-sample.

    Without ``max_points``: the first ``limit`` (default 1,000) epochs after since_epoch.
    With ``max_points``: the epochs after since_epoch (the first ``limit`` of them if
    given, else all) thinned evenly to at most max_points, always keeping the first,
    the last and the best epoch.
    ``next_since_epoch`` is the last epoch covered (pass it back to continue), or None
    once the job is finished and nothing is left after it.
    """
    job = get_job(session=session, job_id=job_id)
    finished = job.status in TERMINAL_STATES  # read before the rows: they are complete then
    after = (JobHistory.job_id == job.id, JobHistory.epoch > since_epoch)
    if max_points is None:
        limit = HISTORY_DEFAULT_LIMIT if limit is None else limit
        statement = select(*POINT_COLUMNS).where(*after).order_by(JobHistory.epoch).limit(limit + 1)
        # Epochs have no gaps, so the page lies within since_epoch + limit + 1: saying so
        # keeps PostgreSQL from reading the rest of a long history when its statistics
        # are stale (a just-written history is). Short of rows (the end, or a gap), ask
        # again without the bound.
        ceiling = min(since_epoch + limit + 1, EPOCH_CEILING)
        bounded = statement.where(JobHistory.epoch <= ceiling)
        rows = list(session.execute(bounded))
        if len(rows) <= limit:
            rows = list(session.execute(statement))
        more = len(rows) > limit
        rows = rows[:limit]
        last_covered = rows[-1].epoch if rows else since_epoch
    else:
        rows, last_covered, more = _sampled_rows(session, job, since_epoch, max_points, limit)
    next_since_epoch = None if finished and not more else last_covered
    return HistoryPage(job.id, [history_point(row) for row in rows], next_since_epoch)


def _sampled_rows(
    session: Session, job: Job, since_epoch: int, max_points: int, limit: int | None
) -> tuple[list[Row], int, bool]:
    """(rows of POINT_COLUMNS, last epoch of the window, whether epochs follow the window)."""
    after = (JobHistory.job_id == job.id, JobHistory.epoch > since_epoch)
    first = session.scalar(select(func.min(JobHistory.epoch)).where(*after))
    if first is None:
        return [], since_epoch, False
    if limit is None:
        last = session.scalar(select(func.max(JobHistory.epoch)).where(*after))
    else:
        last = session.scalar(
            select(JobHistory.epoch)
            .where(*after)
            .order_by(JobHistory.epoch)
            .offset(limit - 1)
            .limit(1)
        )
        if last is None:
            last = session.scalar(select(func.max(JobHistory.epoch)).where(*after))
    window = (*after, JobHistory.epoch <= last)
    more = (
        session.scalar(
            select(JobHistory.epoch)
            .where(JobHistory.job_id == job.id, JobHistory.epoch > last)
            .limit(1)
        )
        is not None
    )
    statement = select(*POINT_COLUMNS).where(*window).order_by(JobHistory.epoch)
    # A history is epochs first..last with no gap (the worker's invariant), so the window
    # holds last - first + 1 of them: no count(*) over a long history. Were one missing,
    # the sample would only hold fewer points.
    if last - first + 1 > max_points:
        best = _best_epoch(session, job, window, first, last)
        statement = statement.where(
            JobHistory.epoch.in_(sample_epochs(first, last, max_points, best))
        )
    return list(session.execute(statement)), last, more


def _best_epoch(
    session: Session, job: Job, window: tuple[Any, ...], first: int, last: int
) -> int | None:
    """The job's best epoch if the window holds it, else the window's lowest monitored loss."""
    if job.best_epoch is not None and first <= job.best_epoch <= last:
        return job.best_epoch
    for loss in (JobHistory.val_loss, JobHistory.train_loss):  # the engine monitors val first
        best = session.scalar(
            select(JobHistory.epoch)
            .where(*window, loss.is_not(None))
            .order_by(loss, JobHistory.epoch)
            .limit(1)
        )
        if best is not None:
            return best
    return None


def sample_epochs(first: int, last: int, count: int, keep: int | None = None) -> list[int]:
    """At most ``count`` (>= 3) epochs evenly spread over [first, last], both ends included,
    plus ``keep`` (the best epoch) when given.
    """
    if last - first + 1 <= count:
        return list(range(first, last + 1))
    even = max(count - 1 if keep is not None else count, 2)  # room for the kept epoch
    span = last - first
    epochs = {first + round(i * span / (even - 1)) for i in range(even)}
    if keep is not None:
        epochs.add(keep)
    return sorted(epochs)


class EventsPoll(NamedTuple):
    job: JobPublic | None  # None: the job was deleted
    points: list[HistoryPoint]
    full: bool  # as many points as one poll reads: poll again at once


def poll_events(*, session: Session, job_id: str, after_epoch: int) -> EventsPoll:
    """The job and the history after ``after_epoch`` (at most EVENT_BATCH epochs).

    The job is read first: when it reads terminal, the rows read next are complete.
    """
    job = session.get(Job, job_id) if could_be_id(job_id) else None
    if job is None:
        return EventsPoll(None, [], False)
    public = job_public(job, model_id_of(session=session, job=job))
    statement = (
        select(JobHistory)
        .where(JobHistory.job_id == job_id, JobHistory.epoch > after_epoch)
        .order_by(JobHistory.epoch)
        .limit(EVENT_BATCH)
    )
    points = [history_point(row) for row in session.scalars(statement)]
    return EventsPoll(public, points, len(points) == EVENT_BATCH)
