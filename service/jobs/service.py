"""Training jobs: create (idempotently), read, list, cancel, and their loss history.

The API only records what to train; a worker (service.queue.worker) claims queued
jobs and trains them. Everything here is short database work, safe to run in
a request handler.
"""

import hashlib
import json
import math
import re
from dataclasses import asdict
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Row, case, false, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import MODEL_TYPES, ModelSpec, SpecError, TrainingSpec
from service.core.auth import current_api_key_id
from service.core.errors import NotFound, Unprocessable, field_problem, not_found, unknown_reference
from service.core.limits import check_work, reserve_queue_room
from service.core.pagination import CURSOR_FIELD, NOT_ISSUED, decode_cursor, page
from service.core.settings import Settings
from service.core.states import (
    CANCELLED,
    CANCELLING,
    JOB_STATES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
)
from service.core.tables import Dataset, IdempotencyKey, Job, JobHistory, Model, could_be_id, utcnow
from service.jobs.schemas import (
    HistoryPoint,
    JobCreate,
    JobLinks,
    JobPublic,
    Progress,
    public_model_spec,
)
from service.queue.notify import notify_job_queued
from service.queue.results import finite_or_none

HISTORY_DEFAULT_LIMIT = 1_000  # points per history page when not down-sampling
HISTORY_MAX_LIMIT = 10_000
HISTORY_MIN_POINTS = 3  # first, last and best always fit
EVENT_BATCH = 1_000  # history rows one events poll reads at most


class CreatedJob(NamedTuple):
    """What POST /v1/jobs answers: the job, and the response body to send.

    ``replayed``: an earlier request with the same Idempotency-Key and body
    created the job; ``response`` and ``status_code`` are that first answer.
    """

    job: Job
    replayed: bool
    status_code: int
    response: dict[str, Any]


class HistoryPage(NamedTuple):
    job_id: str
    points: list[HistoryPoint]
    next_since_epoch: int | None


# Validation beyond the schemas: the engine's own checks and this service's limits.


def engine_specs(job_in: JobCreate, settings: Settings) -> tuple[ModelSpec, TrainingSpec]:
    """The engine's specs for ``job_in``, validated by the engine and against the limits.

    Raises Unprocessable naming the field (``model.<field>`` or ``training.<field>``).
    """
    specs: list[Any] = []
    for prefix, spec_in in (("model", job_in.model), ("training", job_in.training)):
        try:
            specs.append(spec_in.to_engine().validate())
        except SpecError as error:
            raise field_problem(f"{prefix}.{error.field}", error.message) from error
    model_spec, training_spec = specs
    limits = (
        ("model.hidden_units", model_spec.hidden_units, "max_hidden_units"),
        ("training.epochs", training_spec.epochs, "max_epochs"),
    )
    for field, value, setting in limits:
        limit = getattr(settings, setting)
        if value > limit:
            message = (
                f"{value} is over this service's limit of {limit} (BACKPROP_{setting.upper()})"
            )
            raise field_problem(field, message, limit=limit, setting=setting)
    return model_spec, training_spec


def request_sha256(job_in: JobCreate) -> str:
    """sha256 of the validated request with defaults filled in, keys sorted.

    Two bodies that mean the same job (one spelling out the defaults) hash the same. The
    model is hashed as the engine's complete spec, as before model specs became a union,
    so a key stored then still matches the same request now.
    """
    request = {**job_in.model_dump(mode="json"), "model": asdict(job_in.model.to_engine())}
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def trainable_dataset(session: Session, dataset_id: str) -> Dataset:
    """The dataset a job or sweep body names at ``dataset_id``; 422 if none or unusable."""
    dataset = session.get(Dataset, dataset_id) if could_be_id(dataset_id) else None
    if dataset is None:
        raise unknown_reference("dataset_id", "dataset", dataset_id)
    # The engine needs two rows, one feature and two classes (engine.data.prepare).
    problems = []
    if dataset.rows < 2:
        problems.append(f"{dataset.rows} row(s); training needs at least 2")
    if len(dataset.features) < 1:
        problems.append("no feature columns")
    if len(dataset.classes) < 2:
        problems.append(f"one class {dataset.classes}; a classifier needs at least 2")
    if problems:
        message = f"dataset {dataset_id!r} cannot be trained on: " + "; ".join(problems)
        raise field_problem("dataset_id", message)
    return dataset


# Creating a job.


def queued_job(
    *,
    dataset_id: str,
    model_spec: ModelSpec,
    training_spec: TrainingSpec,
    settings: Settings,
    created_at: datetime,
    **columns: Any,
) -> Job:
    """A new job row in the queue, its specs stored complete (the worker rebuilds them)."""
    return Job(
        dataset_id=dataset_id,
        status=QUEUED,
        model_type=model_spec.type,
        model_spec=asdict(model_spec),
        training_spec=training_spec.to_dict(),
        attempt=0,
        max_attempts=settings.max_attempts,
        epoch=0,
        epochs=training_spec.epochs,
        elapsed_seconds=0.0,
        created_at=created_at,
        **columns,
    )


def create_job(
    *,
    session: Session,
    job_in: JobCreate,
    settings: Settings,
    idempotency_key: str | None = None,
) -> CreatedJob:
    """Record a queued job and wake a worker; commits.

    The job is refused when its epochs x the dataset's rows is over the work budget
    (422), or when the caller's API key (service.core.auth.current_api_key_id: the key of
    the request being served; every caller is one anonymous key when the API has
    none) already has max_queued_jobs_per_key queued jobs (429). The job records the
    key's id.

    With an ``idempotency_key``, the key, the request's hash and the response
    are stored in the same transaction as the job. A retry with the same key
    and body gets the first response again; with another body, 422. Two
    concurrent requests with one key create one job: the key's primary key
    lets only one transaction commit, the other rolls back and replays.
    """
    request_hash = request_sha256(job_in)
    if idempotency_key is not None:
        earlier = session.get(IdempotencyKey, idempotency_key)
        if earlier is not None:
            return _replay(session, earlier, request_hash)

    model_spec, training_spec = engine_specs(job_in, settings)
    dataset = trainable_dataset(session, job_in.dataset_id)
    check_work(epochs=training_spec.epochs, rows=dataset.rows, settings=settings)
    api_key_id = current_api_key_id()
    reserve_queue_room(session=session, settings=settings, api_key_id=api_key_id, adding=1)
    job = queued_job(
        dataset_id=dataset.id,
        model_spec=model_spec,
        training_spec=training_spec,
        settings=settings,
        created_at=utcnow(),
        api_key_id=api_key_id,
    )
    try:
        session.add(job)
        session.flush()  # the job row first: the key's row refers to it
        response = job_public(job).model_dump(mode="json")
        if idempotency_key is not None:
            session.add(
                IdempotencyKey(
                    key=idempotency_key,
                    request_sha256=request_hash,
                    job_id=job.id,
                    status_code=202,
                    response=response,
                )
            )
            session.flush()  # PostgreSQL: waits here on a concurrent holder of the key
        notify_job_queued(session)
        session.commit()
    except IntegrityError:
        session.rollback()
        earlier = session.get(IdempotencyKey, idempotency_key) if idempotency_key else None
        if earlier is not None:  # another request with this key committed first
            return _replay(session, earlier, request_hash)
        if session.get(Dataset, job_in.dataset_id) is None:  # deleted meanwhile
            raise unknown_reference("dataset_id", "dataset", job_in.dataset_id) from None
        raise
    return CreatedJob(job=job, replayed=False, status_code=202, response=response)


def _replay(session: Session, earlier: IdempotencyKey, request_hash: str) -> CreatedJob:
    if earlier.request_sha256 != request_hash:
        raise field_problem(
            "header.Idempotency-Key",
            f"{earlier.key!r} was already used with a different request "
            f"(which created job {earlier.job_id}); use a new key for a new request",
        )
    job = session.get(Job, earlier.job_id)
    if job is None:  # pragma: no cover - the key's row is deleted with its job (CASCADE)
        raise NotFound(f"job {earlier.job_id} no longer exists")
    # A response stored before model specs became a union shows a logistic regression's
    # hidden_units and activation: shown again, it has only its type's fields.
    response = {**earlier.response, "model": public_model_spec(earlier.response["model"])}
    return CreatedJob(job=job, replayed=True, status_code=earlier.status_code, response=response)


# Reading jobs.


def get_job(*, session: Session, job_id: str) -> Job:
    """The job, or a 404 problem."""
    job = session.get(Job, job_id) if could_be_id(job_id) else None
    if job is None:
        raise not_found("job", job_id)
    return job


def model_ids(*, session: Session, job_ids: list[str]) -> dict[str, str]:
    """job id -> its fitted model's id, for the jobs that have one."""
    if not job_ids:
        return {}
    statement = select(Model.job_id, Model.id).where(Model.job_id.in_(job_ids))
    return {job_id: model_id for job_id, model_id in session.execute(statement)}


def model_id_of(*, session: Session, job: Job) -> str | None:
    if job.status != SUCCEEDED:
        return None
    return session.scalar(select(Model.id).where(Model.job_id == job.id))


# A `status` value: job states separated by commas (spaces around them allowed). The
# document states this pattern; the parser applies the same one.
STATUS_LIST_PATTERN = rf"^ *({'|'.join(JOB_STATES)})? *(, *({'|'.join(JOB_STATES)})? *)*$"


def parse_statuses(values: list[str] | None) -> list[str]:
    """``status=queued&status=running`` or ``status=queued,running``, each a known state."""
    for value in values or []:
        if not re.fullmatch(STATUS_LIST_PATTERN, value):
            pieces = (piece.strip(" ") for piece in value.split(","))
            wrong = next((p for p in pieces if p and p not in JOB_STATES), value)
            raise field_problem("query.status", f"{wrong!r} is not one of {list(JOB_STATES)}")
    return [s.strip() for value in values or [] for s in value.split(",") if s.strip()]


def list_jobs(
    *,
    session: Session,
    statuses: list[str] | None = None,
    dataset_id: str | None = None,
    model_type: str | None = None,
    sweep_id: str | None = None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Job], str | None]:
    """One page of jobs, newest first; the filters are SQL, applied before the limit."""
    if model_type is not None and model_type not in MODEL_TYPES:
        raise Unprocessable(
            f"model_type: {model_type!r} is not one of {list(MODEL_TYPES)}",
            field="query.model_type",
        )
    if cursor is not None:
        _check_cursor(cursor)
    statement = select(Job)
    wanted = parse_statuses(statuses)
    if wanted:
        statement = statement.where(Job.status.in_(wanted))
    if dataset_id is not None:
        # An id no dataset can have matches no job (and never reaches PostgreSQL with a NUL).
        statement = statement.where(
            Job.dataset_id == dataset_id if could_be_id(dataset_id) else false()
        )
    if model_type is not None:
        statement = statement.where(Job.model_type == model_type)
    if sweep_id is not None:
        statement = statement.where(Job.sweep_id == sweep_id if could_be_id(sweep_id) else false())
    return page(session, statement, Job, limit, cursor)


def _check_cursor(cursor: str) -> None:
    # service.core.pagination decodes any base64 JSON pair; a forged one with a naive time or a
    # NUL would fail inside the database driver (a 500), so refuse it here as a 422.
    created_at, row_id = decode_cursor(cursor)
    if created_at.tzinfo is None or not could_be_id(row_id):
        raise field_problem(CURSOR_FIELD, NOT_ISSUED)


# Cancelling.


def cancel_jobs(session: Session, *where: ColumnElement[bool]) -> None:
    """The cancel transition for every job matching ``where``, in one UPDATE (no commit).

    queued -> cancelled at once (finished, stop_reason "cancelled"); running ->
    cancelling (its worker stops at the next epoch); cancelling or terminal -> unchanged.
    """
    now = utcnow()
    was_queued = Job.status == QUEUED
    session.execute(
        update(Job)
        .where(*where, Job.status.in_((QUEUED, RUNNING)))
        .values(
            status=case((was_queued, CANCELLED), else_=CANCELLING),
            finished_at=case(
                (was_queued, literal(now, Job.finished_at.type)), else_=Job.finished_at
            ),
            stop_reason=case((was_queued, "cancelled"), else_=Job.stop_reason),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def cancel_job(*, session: Session, job_id: str) -> Job:
    """Cancel idempotently; commits. Returns the job as the cancel left it.

    queued -> cancelled at once (finished, stop_reason "cancelled");
    running -> cancelling (the worker stops at its next epoch and keeps the history);
    cancelling or terminal -> unchanged.
    One conditional UPDATE decides: a worker claiming the job at the same moment either
    claimed it first (the job is running, so it becomes cancelling) or finds it cancelled
    (its claim, conditional on queued, takes nothing).
    """
    if not could_be_id(job_id):
        raise not_found("job", job_id)
    cancel_jobs(session, Job.id == job_id)
    # Read before the commit, while the UPDATE still holds the row: the answer is what the
    # cancel did (a worker may finish a cancelling job a few milliseconds later).
    job = get_job(session=session, job_id=job_id)
    session.commit()
    return job


# What clients see.


def job_public(job: Job, model_id: str | None = None) -> JobPublic:
    base = f"/v1/jobs/{job.id}"
    return JobPublic(
        id=job.id,
        status=job.status,
        dataset_id=job.dataset_id,
        model=finite_or_none(job.model_spec),
        training=finite_or_none(job.training_spec),
        progress=progress_of(job),
        stop_reason=job.stop_reason,
        error=job.error,
        error_code=job.error_code,
        attempts=job.attempt,
        max_attempts=job.max_attempts,
        model_id=model_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        sweep_id=job.sweep_id,
        trial=finite_or_none(job.trial),
        links=JobLinks(
            self=base,
            history=f"{base}/history",
            events=f"{base}/events",
            cancel=f"{base}/cancel",
            model=f"/v1/models/{model_id}" if model_id else None,
        ),
    )


def progress_of(job: Job) -> Progress:
    """Epoch counts, latest losses and a time estimate from the seconds per epoch so far."""
    epoch, epochs = job.epoch or 0, job.epochs
    elapsed = finite_or_none(float(job.elapsed_seconds or 0.0)) or 0.0
    if job.status == SUCCEEDED:
        percent = 100.0  # early stopping and convergence finish before `epochs`
    else:
        percent = round(100.0 * min(epoch, epochs) / epochs, 2) if epochs else 0.0
    return Progress(
        epoch=epoch,
        epochs=epochs,
        percent=percent,
        train_loss=finite_or_none(job.train_loss),
        val_loss=finite_or_none(job.val_loss),
        best_epoch=job.best_epoch,
        elapsed_seconds=elapsed,
        remaining_seconds=_remaining_seconds(job, epoch, epochs, elapsed),
    )


def _remaining_seconds(job: Job, epoch: int, epochs: int, elapsed: float) -> float | None:
    if job.status in TERMINAL_STATES:
        return 0.0
    if epoch <= 0 or elapsed <= 0.0:
        return None  # no epoch timed yet
    per_epoch = elapsed / epoch
    if job.status == CANCELLING:
        return per_epoch  # it stops at the end of the current epoch
    remaining = per_epoch * max(epochs - epoch, 0)
    time_limit = (job.training_spec or {}).get("time_limit")
    if isinstance(time_limit, int | float) and math.isfinite(time_limit):
        remaining = min(remaining, max(time_limit - elapsed, 0.0))
    return remaining


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


# History.


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


# Events: what the SSE stream polls.


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
