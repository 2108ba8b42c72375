"""Limits on what one request may cost, beyond the per-field ones.

Where each limit is enforced (every refusal is problem+json with ``limit`` and
``setting`` members, and its detail names the BACKPROP_ variable):

- upload bytes (413), rows, columns (413) and label classes (422):
  service.datasets.uploads and service.datasets.reader, while the file arrives;
- hidden units and epochs (422): service.jobs.service.engine_specs;
- prediction rows per request (413): service.models.service;
- the work budget, epochs x rows (422): ``check_work`` here, for a job and for
  each trial of a sweep;
- queued jobs per API key (429 with Retry-After): ``reserve_queue_room`` here;
- JSON request bodies (413): ``JsonBodyLimitMiddleware`` here, before FastAPI
  parses the body; the upload route keeps its own, larger limit.
"""

import hashlib
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.auth import route_path
from service.core.errors import ProblemResponse, ServiceError, Unprocessable, problem
from service.core.settings import Settings
from service.core.states import QUEUED
from service.core.tables import Job

# POST /v1/datasets streams its body to disk under BACKPROP_MAX_UPLOAD_BYTES
# (service.datasets.uploads); every other body is JSON, held in memory to be parsed.
UPLOAD_METHOD, UPLOAD_PATH = "POST", "/v1/datasets"
# How long a client whose queue is full should wait: about when workers will have
# claimed some of its jobs. A hint; the next request is checked again in any case.
QUEUE_RETRY_AFTER_SECONDS = 10


class TooManyRequests(ServiceError):
    """429: a budget is spent for now; ``retry_after`` seconds is a good time to try again."""

    status, title = 429, "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any):
        super().__init__(detail, **extra)
        self.retry_after = retry_after


# The work budget.


def check_work(
    *, epochs: int, rows: int, settings: Settings, field: str = "training.epochs"
) -> None:
    """422 naming ``field`` when epochs x rows (samples a job may pass through) is over max_work."""
    work = epochs * rows
    if work > settings.max_work:
        message = (
            f"{epochs:,} epochs x {rows:,} rows = {work:,} is over this service's work budget "
            f"of {settings.max_work:,} epochs x rows per job (BACKPROP_MAX_WORK, max_work); "
            "ask for fewer epochs or train on fewer rows"
        )
        raise Unprocessable(
            f"{field}: {message}",
            errors=[{"field": field, "message": message}],
            limit=settings.max_work,
            setting="max_work",
        )


# Queued jobs per key.


def _lock_number(api_key_id: str | None) -> int:
    """A PostgreSQL advisory lock number (signed 64-bit) for one key's queue budget."""
    digest = hashlib.sha256(f"backprop queued jobs of {api_key_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def reserve_queue_room(
    *, session: Session, settings: Settings, api_key_id: str | None, adding: int
) -> None:
    """Check that the key (None: anonymous) may have ``adding`` more queued jobs; 429 if not.

    The count and the caller's insert must not interleave with another request's, or two
    requests could each see room for one: on SQLite the write session's BEGIN IMMEDIATE
    already serialises them; on PostgreSQL a transaction-scoped advisory lock per key
    does (released at commit or rollback, so call this inside the inserting transaction).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_lock_number(api_key_id))))
    owner = Job.api_key_id.is_(None) if api_key_id is None else Job.api_key_id == api_key_id
    queued = session.scalar(
        select(func.count()).select_from(Job).where(Job.status == QUEUED, owner)
    )
    limit = settings.max_queued_jobs_per_key
    if queued + adding > limit:
        whose = "this API key has" if api_key_id is not None else "there are"
        asked = "1 more" if adding == 1 else f"{adding:,} more (one per trial)"
        raise TooManyRequests(
            f"{whose} {queued:,} queued jobs; {asked} would pass the limit of {limit:,} queued "
            "jobs per key (BACKPROP_MAX_QUEUED_JOBS_PER_KEY, max_queued_jobs_per_key); "
            "retry once workers have started some of them",
            retry_after=QUEUE_RETRY_AFTER_SECONDS,
            limit=limit,
            setting="max_queued_jobs_per_key",
            queued=queued,
        )


# JSON request bodies.


class _BodyOverLimit(Exception):
    """Raised from ``receive`` once the body passes the limit; the middleware answers 413."""


def body_too_large(limit: int, declared: int | None = None) -> ProblemResponse:
    said = f"declares {declared:,} bytes" if declared is not None else "is longer than that"
    return problem(
        413,
        "Content Too Large",
        f"JSON request bodies are limited to {limit:,} bytes (BACKPROP_MAX_JSON_BODY_BYTES, "
        f"max_json_body_bytes) and this one {said}",
        # The rest of the body is not read: the connection cannot carry another request.
        headers={"Connection": "close"},
        limit=limit,
        setting="max_json_body_bytes",
    )


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses such a request before it gets here
    return None


class JsonBodyLimitMiddleware:
    """413 for a body over ``max_bytes``: at once when Content-Length says so, else as soon
    as the bytes read pass it (a chunked body). The upload route is left to its own limit."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], route_path(scope)) == (
            UPLOAD_METHOD,
            UPLOAD_PATH,
        ):
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await body_too_large(self.max_bytes, declared)(scope, receive, send)
            else:
                # The server delivers no more than Content-Length bytes of body (what
                # follows is the next request), so only a chunked body needs counting.
                await self.app(scope, receive, send)
            return

        received, over, started = 0, False, False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
            if over:
                raise _BodyOverLimit
            return message

        async def send_unless_over(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a body it could not read; ours replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, send_unless_over)
        except Exception:
            if not over or started:  # not ours, or too late to answer in its place
                raise
        if over and not started:
            await body_too_large(self.max_bytes)(scope, receive, send)


def install_limits(app: FastAPI, settings: Settings) -> None:
    """The JSON body limit, and the 429 answer (with Retry-After) of TooManyRequests."""
    app.add_middleware(JsonBodyLimitMiddleware, max_bytes=settings.max_json_body_bytes)

    @app.exception_handler(TooManyRequests)
    async def too_many_requests(request: Request, error: TooManyRequests) -> ProblemResponse:
        headers = {"Retry-After": str(error.retry_after)}
        return problem(error.status, error.title, error.detail, headers=headers, **error.extra)
