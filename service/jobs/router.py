"""/v1/jobs: create, list, read and cancel training jobs; their history and live events."""

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import WithJsonSchema
from starlette.concurrency import run_in_threadpool

from service.core.deps import DatabaseDep, IdPath, PageDep, SessionDep, SettingsDep, WriteSessionDep
from service.core.schemas import LIMIT_PROBLEM, problem_responses
from service.core.states import CANCELLED, CANCELLING, JOB_STATES
from service.jobs import deletion, events
from service.jobs import history as histories
from service.jobs import service as jobs
from service.jobs.public import job_public
from service.jobs.schemas import (
    CREATE_EXAMPLES,
    EXAMPLE_JOB_ID,
    HISTORY_CSV_EXAMPLE,
    HISTORY_EXAMPLE,
    HISTORY_FIELDS,
    JOB_EXAMPLE,
    QUEUED_JOB_EXAMPLE,
    SUCCEEDED_JOB_EXAMPLE,
    HistoryPublic,
    JobCreate,
    JobPublic,
    JobsPublic,
)
from service.jobs.specs import ModelType
from service.models.service import ModelCacheDep

# One `status` value: job states separated by commas, as jobs.parse_statuses reads it.
StatusList = Annotated[str, WithJsonSchema({"type": "string", "pattern": jobs.STATUS_LIST_PATTERN})]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

IDEMPOTENCY_KEY_MAX_LENGTH = 200  # service.core.tables.IdempotencyKey.key

# The error examples' details, as the service words them.
JOB_NOT_FOUND = {404: f"job {EXAMPLE_JOB_ID!r} does not exist"}
CREATE_PROBLEMS = {
    422: "model.activation: Input should be 'sigmoid', 'tanh', 'relu' or 'leaky_relu'",
}
HISTORY_PROBLEMS = {
    **JOB_NOT_FOUND,
    422: "query.max_points: Input should be greater than or equal to 3",
}
EVENTS_PROBLEMS = {
    **JOB_NOT_FOUND,
    422: "header.Last-Event-ID: 'x' is not an epoch number (this stream's event ids are epochs, "
    "integers >= 0)",
}


def _json_example(example: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": example}}}


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    summary="Queue a training job",
    responses={
        202: {
            **_json_example(QUEUED_JOB_EXAMPLE, "Queued; a worker will train it"),
            "headers": {
                "Location": {"description": "/v1/jobs/{id}", "schema": {"type": "string"}},
                "Idempotent-Replayed": {
                    "description": "`true` when this answer replays an earlier request's",
                    "schema": {"type": "string"},
                },
            },
        },
        **problem_responses(422, 503, details=CREATE_PROBLEMS),
    },
)
def create_job(
    job_in: Annotated[JobCreate, Body(openapi_examples=CREATE_EXAMPLES)],
    session: WriteSessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
            description="Makes retries safe: a retry with the same key and body gets the "
            "first answer again (one job); the same key with another body gets 422",
            examples=["5f0c2a7e-1b9d-4c36-9a8e-0d7f6b3e2a11"],
        ),
    ] = None,
) -> JSONResponse:
    """Record a job on a dataset and answer at once; a worker trains it."""
    created = jobs.create_job(
        session=session, job_in=job_in, settings=settings, idempotency_key=idempotency_key
    )
    headers = {"Location": f"/v1/jobs/{created.job.id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(created.response, status_code=created.status_code, headers=headers)


@router.get(
    "",
    summary="List jobs, newest first",
    responses={
        200: _json_example(
            {"data": [SUCCEEDED_JOB_EXAMPLE], "next_cursor": "WyIyMDI1LTA1LTAxVDA5OjMw"},
            "A page of jobs",
        ),
        **problem_responses(422, 503, details={422: LIMIT_PROBLEM}),
    },
)
def list_jobs(
    session: SessionDep,
    page: PageDep,
    status: Annotated[
        list[
            Annotated[str, WithJsonSchema({"type": "string", "pattern": jobs.STATUS_LIST_PATTERN})]
        ]
        | None,
        Query(
            description=f"Only jobs in these states (repeat or comma-separate): {list(JOB_STATES)}",
            examples=[["queued", "running"]],
        ),
    ] = None,
    dataset_id: Annotated[str | None, Query(description="Only jobs on this dataset")] = None,
    model_type: Annotated[ModelType | None, Query(description="Only this model type")] = None,
    sweep_id: Annotated[
        str | None, Query(description="Only the trials of this sweep (POST /v1/sweeps)")
    ] = None,
) -> JobsPublic:
    """One page of jobs; the filters apply before the page limit."""
    rows, next_cursor = jobs.list_jobs(
        session=session,
        statuses=status,
        dataset_id=dataset_id,
        model_type=model_type,
        sweep_id=sweep_id,
        limit=page.limit,
        cursor=page.cursor,
    )
    models = jobs.model_ids(session=session, job_ids=[job.id for job in rows])
    data = [job_public(job, models.get(job.id)) for job in rows]
    return JobsPublic(data=data, next_cursor=next_cursor)


@router.get(
    "/{job_id}",
    summary="A job: state, specs and progress",
    responses={
        200: {
            "description": "The job",
            "content": {
                "application/json": {
                    "examples": {
                        "running": {"summary": "Training", "value": JOB_EXAMPLE},
                        "succeeded": {"summary": "Done", "value": SUCCEEDED_JOB_EXAMPLE},
                    }
                }
            },
        },
        **problem_responses(404, 503, details=JOB_NOT_FOUND),
    },
)
def get_job(job_id: IdPath, session: SessionDep) -> JobPublic:
    """The job with its progress: epoch of epochs, latest losses, time left."""
    job = jobs.get_job(session=session, job_id=job_id)
    return job_public(job, jobs.model_id_of(session=session, job=job))


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a job (idempotent)",
    responses={
        200: _json_example(
            {**QUEUED_JOB_EXAMPLE, "status": CANCELLED, "stop_reason": "cancelled"},
            "The job is finished: it was queued and is now cancelled, or had already ended",
        ),
        202: _json_example(
            {**JOB_EXAMPLE, "status": CANCELLING},
            "The job is running: it stops at its next epoch, keeping its history",
        ),
        **problem_responses(404, 503, details=JOB_NOT_FOUND),
    },
)
def cancel_job(job_id: IdPath, session: WriteSessionDep, response: Response) -> JobPublic:
    """Cancel: a queued job at once, a running one at its next epoch; repeating is harmless."""
    job = jobs.cancel_job(session=session, job_id=job_id)
    response.status_code = 202 if job.status == CANCELLING else 200
    return job_public(job, jobs.model_id_of(session=session, job=job))


@router.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a finished job, its history, checkpoint and model",
    responses={
        204: {"description": "Deleted; its model's predictions answer 404 on every API process"},
        **problem_responses(
            404,
            409,
            503,
            details={
                **JOB_NOT_FOUND,
                409: f"job {EXAMPLE_JOB_ID} is running: cancel it first (POST "
                f"/v1/jobs/{EXAMPLE_JOB_ID}/cancel), then delete it once it has ended",
            },
        ),
    },
)
def delete_job(job_id: IdPath, session: WriteSessionDep, cache: ModelCacheDep) -> Response:
    """Delete an ended job; 409 while it is live (cancel it first) or its model is aliased."""
    deletion.delete_job(session=session, cache=cache, job_id=job_id)
    return Response(status_code=204)


@router.get(
    "/{job_id}/history",
    summary="The loss history, per epoch (JSON, or CSV with Accept: text/csv)",
    response_model=HistoryPublic,
    responses={
        200: {
            "description": "Epochs after `since_epoch`; CSV has a header row and empty cells "
            "for nulls, and `next_since_epoch` in the Next-Since-Epoch header",
            "content": {
                "application/json": {"example": HISTORY_EXAMPLE},
                "text/csv": {"schema": {"type": "string"}, "example": HISTORY_CSV_EXAMPLE},
            },
        },
        **problem_responses(404, 422, 503, details=HISTORY_PROBLEMS),
    },
)
def get_job_history(
    job_id: IdPath,
    session: SessionDep,
    since_epoch: Annotated[
        int,
        Query(
            ge=0,
            le=events.EPOCH_MAX,
            description="Only epochs after this one (incremental polling)",
        ),
    ] = 0,
    max_points: Annotated[
        int | None,
        Query(
            ge=histories.HISTORY_MIN_POINTS,
            le=histories.HISTORY_MAX_LIMIT,
            description="Down-sample evenly to at most this many points, always keeping "
            "the first, the last and the best epoch",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=histories.HISTORY_MAX_LIMIT,
            description="Epochs per page (default 1000); with max_points, the epochs the "
            "sample is drawn from (default: all)",
        ),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    """Per-epoch losses, accuracies, gradient norm and seconds; null where not finite."""
    history = histories.job_history(
        session=session, job_id=job_id, since_epoch=since_epoch, max_points=max_points, limit=limit
    )
    if accept is not None and "text/csv" in accept.lower():
        return _history_csv(history)
    return HistoryPublic(
        job_id=history.job_id, points=history.points, next_since_epoch=history.next_since_epoch
    )


def _history_csv(history: histories.HistoryPage) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HISTORY_FIELDS)
    for point in history.points:
        values = point.model_dump()
        writer.writerow(["" if values[name] is None else values[name] for name in HISTORY_FIELDS])
    headers = {}
    if history.next_since_epoch is not None:
        headers["Next-Since-Epoch"] = str(history.next_since_epoch)
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/{job_id}/events",
    summary="Live progress: server-sent events until the job ends",
    response_class=events.EventStreamResponse,
    response_model=None,
    responses={
        200: {
            "description": (
                "`text/event-stream`. On connect, `status` (data: the job, as GET /v1/jobs/{id}); "
                "then `epoch` per history row (data: a history point; `id:` the epoch); "
                "`status` again whenever the status changes; a `: keep-alive` comment every "
                f"{events.KEEPALIVE_SECONDS:g} s. When the job has ended: a last `status`, then "
                "`end` (data: the final job) and the stream closes. Reconnecting with "
                "`Last-Event-ID: n` (as EventSource does) sends only epochs after n. "
                "The schema and example are of one event; a whole stream reads:\n\n"
                + "".join(f"    {line}\n" for line in events.EVENTS_EXAMPLE.splitlines())
            ),
            "content": {
                "text/event-stream": {
                    "schema": events.EVENT_SCHEMA,
                    "example": events.EVENT_EXAMPLE,
                }
            },
        },
        **problem_responses(404, 422, 503, details=EVENTS_PROBLEMS),
    },
)
async def get_job_events(
    job_id: IdPath,
    request: Request,
    database: DatabaseDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="Resume after this epoch: only later epochs are sent",
            json_schema_extra=events.epoch_header_schema,
        ),
    ] = None,
) -> events.EventStreamResponse:
    """Stream status changes and per-epoch metrics; resumable; closes when the job ends."""
    after_epoch = events.resume_epoch(last_event_id)
    # A 404 problem, not a stream.
    await run_in_threadpool(events.check_job_exists, database, job_id)
    return events.EventStreamResponse(
        events.job_events(request, database, job_id, after_epoch),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
