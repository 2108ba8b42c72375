"""GET /v1/jobs/{id}/events: a job's progress as server-sent events, and how they read.

The stream polls the database (a fresh read snapshot each time) and turns what changed
into events: a `status` on connect and on every change, an `epoch` per history row, a
keep-alive comment when idle, and `end` when the job has ended.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from service.core.database import Database
from service.core.errors import field_problem
from service.core.states import TERMINAL_STATES
from service.jobs import history
from service.jobs import service as jobs
from service.jobs.schemas import EXAMPLE_JOB_ID, HISTORY_EXAMPLE

POLL_SECONDS = 0.2  # how often an events stream looks at the database
KEEPALIVE_SECONDS = 15.0  # a comment line this often keeps proxies from closing idle streams
RETRY_MILLISECONDS = 1_000  # how soon an EventSource reconnects after a dropped stream
# job_history.epoch is a 32-bit INTEGER: a larger bound would fail inside the driver (a 500).
EPOCH_MAX = 2**31 - 1


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


EVENTS_EXAMPLE = (
    f"retry: {RETRY_MILLISECONDS}\n\n"
    'event: status\ndata: {"id": "' + EXAMPLE_JOB_ID + '", "status": "running", ...}\n\n'
    'id: 1\nevent: epoch\ndata: {"epoch": 1, "train_loss": 0.6931, "val_loss": 0.6929, '
    '"train_accuracy": 0.627, "val_accuracy": 0.628, "grad_norm": 0.2143, "seconds": 0.021}\n\n'
    'id: 2\nevent: epoch\ndata: {"epoch": 2, "train_loss": 0.6874, ...}\n\n'
    ": keep-alive\n\n"
    'event: status\ndata: {"id": "' + EXAMPLE_JOB_ID + '", "status": "succeeded", ...}\n\n'
    'event: end\ndata: {"id": "' + EXAMPLE_JOB_ID + '", "status": "succeeded", ...}\n\n'
)


def epoch_header_schema(schema: dict[str, Any]) -> None:
    """Last-Event-ID as the string it is (an epoch number), not `string | null`: a header
    is absent or a string, and a client reading `null` in the schema sends "null".
    Documented only: resume_epoch checks it, with a message saying what the ids are.
    """
    schema.pop("anyOf", None)
    schema.update(type="string", pattern=r"^\s*[0-9]*\s*$")


def _data_of(event: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`data` of the ``event`` events is JSON text matching ``schema``."""
    return {
        "if": {"properties": {"event": {"const": event}}, "required": ["event"]},
        "then": {"properties": {"data": {"contentSchema": schema}}},
    }


JOB_REF = {"$ref": "#/components/schemas/JobPublic"}
# One event of the stream, as OpenAPI 3.1 describes a text/event-stream (its `schema` is
# one event: the fields `event`, `data`, `id` and `retry`; comment lines are not events).
EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["status", "epoch", "end"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The last epoch sent"},
        "retry": {"type": "integer", "minimum": 0},
    },
    "allOf": [
        _data_of("status", JOB_REF),
        _data_of("epoch", {"$ref": "#/components/schemas/HistoryPoint"}),
        _data_of(
            "end",
            {
                "anyOf": [
                    JOB_REF,
                    {  # the job was deleted while streaming
                        "type": "object",
                        "required": ["id", "status", "detail"],
                        "properties": {
                            "id": {"type": "string"},
                            "status": {"type": "null"},
                            "detail": {"type": "string"},
                        },
                    },
                ]
            },
        ),
    ],
}
EVENT_EXAMPLE = {
    "event": "epoch",
    "id": "2",
    "data": json.dumps(HISTORY_EXAMPLE["points"][1]),
}


def resume_epoch(last_event_id: str | None) -> int:
    if last_event_id is None or not last_event_id.strip():
        return 0
    try:
        epoch = int(last_event_id.strip())
    except ValueError:
        epoch = -1
    if epoch < 0:
        raise field_problem(
            "header.Last-Event-ID",
            f"{last_event_id[:40]!r} is not an epoch number (this stream's "
            "event ids are epochs, integers >= 0)",
        )
    return min(epoch, EPOCH_MAX)  # past every epoch: nothing more to send, as for EPOCH_MAX


def check_job_exists(database: Database, job_id: str) -> None:
    with database.reads() as session:
        jobs.get_job(session=session, job_id=job_id)


def _poll(database: Database, job_id: str, after_epoch: int) -> history.EventsPoll:
    with database.reads() as session:  # a fresh snapshot each poll
        return history.poll_events(session=session, job_id=job_id, after_epoch=after_epoch)


def sse(event: str, data: BaseModel | dict[str, Any], event_id: int | None = None) -> str:
    """One event in text/event-stream framing. Events without an id keep the last one."""
    payload = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(data)
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {payload}\n\n"


async def job_events(
    request: Request, database: Database, job_id: str, after_epoch: int
) -> AsyncIterator[str]:
    """Poll the database and turn what changed into events (see get_job_events).

    Order: the snapshot first; then a start (queued -> running) before its epochs, and
    an end (a terminal status) after every epoch, then `end`.
    """
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    sent_status: str | None = None
    last_sent = time.monotonic()
    while not await request.is_disconnected():
        poll = await run_in_threadpool(_poll, database, job_id, after_epoch)
        if poll.job is None:
            yield sse("end", {"id": job_id, "status": None, "detail": "the job was deleted"})
            return
        status = poll.job.status
        sending = bool(poll.points)
        if sent_status is None or (status != sent_status and status not in TERMINAL_STATES):
            yield sse("status", poll.job)
            sent_status, sending = status, True
        for point in poll.points:
            yield sse("epoch", point, event_id=point.epoch)
            after_epoch = point.epoch
        if poll.full:
            continue  # a long history: send the rest before anything else
        if status != sent_status:  # it ended: after its last epochs
            yield sse("status", poll.job)
            sent_status, sending = status, True
        if status in TERMINAL_STATES:
            yield sse("end", poll.job)
            return
        now = time.monotonic()
        if sending:
            last_sent = now
        elif now - last_sent >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = now
        await asyncio.sleep(POLL_SECONDS)
