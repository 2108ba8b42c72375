"""Training jobs: create (idempotently), read, list and cancel (history: service.jobs.history).

The API only records what to train; a worker (service.queue.worker) claims queued
jobs and trains them. Everything here is short database work, safe to run in
a request handler.
"""

import hashlib
import json
import re
from dataclasses import asdict
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, case, false, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import MODEL_TYPES, ModelSpec, SpecError, TrainingSpec
from service.core.audit import record
from service.core.auth import current_api_key_id
from service.core.errors import NotFound, Unprocessable, field_problem, not_found, unknown_reference
from service.core.limits import check_work, reserve_queue_room
from service.core.pagination import CURSOR_FIELD, NOT_ISSUED, decode_cursor, page
from service.core.quotas import reserve_project_queue_room
from service.core.settings import Settings
from service.core.states import (
    CANCELLED,
    CANCELLING,
    JOB_STATES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
)
from service.core.tables import Dataset, IdempotencyKey, Job, Model, could_be_id, utcnow
from service.core.tenancy import request_project
from service.datasets.input_columns import check_preprocessing, dataset_warnings
from service.jobs.public import job_public
from service.jobs.schemas import JobCreate
from service.jobs.specs import public_model_spec
from service.jobs.warm_start import check_warm_start
from service.queue.notify import notify_job_queued


class CreatedJob(NamedTuple):
    """What POST /v1/jobs answers: the job, and the response body to send.

    ``replayed``: an earlier request with the same Idempotency-Key and body
    created the job; ``response`` and ``status_code`` are that first answer.
    """

    job: Job
    replayed: bool
    status_code: int
    response: dict[str, Any]


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
    # warm_start is left out when null: keys stored before it existed still match.
    body = job_in.model_dump(mode="json", exclude={"warm_start"} if not job_in.warm_start else None)
    request = {**body, "model": asdict(job_in.model.to_engine())}
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
        earlier = session.get(IdempotencyKey, (request_project(), idempotency_key))
        if earlier is not None:
            return _replay(session, earlier, request_hash)

    model_spec, training_spec = engine_specs(job_in, settings)
    dataset = trainable_dataset(session, job_in.dataset_id)
    parent_id = job_in.warm_start.model_id if job_in.warm_start else None
    if parent_id is None:
        check_preprocessing(dataset, training_spec.preprocessing, "training.preprocessing")
    else:  # the parent's preprocessing, checked against this dataset (service.jobs.warm_start)
        model_spec, training_spec = check_warm_start(
            session=session,
            model_id=parent_id,
            dataset=dataset,
            model_spec=model_spec if "model" in job_in.model_fields_set else None,
            training_spec=training_spec,
        )
    check_work(epochs=training_spec.epochs, rows=dataset.rows, settings=settings)
    api_key_id = current_api_key_id()
    reserve_queue_room(session=session, settings=settings, api_key_id=api_key_id, adding=1)
    reserve_project_queue_room(session, project=request_project(), settings=settings, adding=1)
    job = queued_job(
        dataset_id=dataset.id,
        model_spec=model_spec,
        training_spec=training_spec,
        settings=settings,
        created_at=utcnow(),
        api_key_id=api_key_id,
        warnings=dataset_warnings(dataset),
        warm_start={"model_id": parent_id} if parent_id else None,
        parent_model_id=parent_id,
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
        record(session, "job.create", job.id, {"dataset_id": dataset.id})
        notify_job_queued(session)
        session.commit()
    except IntegrityError:
        session.rollback()
        earlier = (
            session.get(IdempotencyKey, (request_project(), idempotency_key))
            if idempotency_key
            else None
        )
        if earlier is not None:  # another request with this key committed first
            return _replay(session, earlier, request_hash)
        if session.get(Dataset, job_in.dataset_id) is None:  # deleted meanwhile
            raise unknown_reference("dataset_id", "dataset", job_in.dataset_id) from None
        if parent_id is not None and session.get(Model, parent_id) is None:
            raise unknown_reference("warm_start.model_id", "model", parent_id) from None
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
    if job.status not in (SUCCEEDED, CANCELLED):  # the only states that keep a model
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
    record(session, "job.cancel", job_id, {"status": job.status})
    session.commit()
    return job


# What clients see.


# History.


# Events: what the SSE stream polls.
