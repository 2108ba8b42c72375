"""The label column sent as a feature, said plainly, wherever records are taken.

A record copied whole from the training CSV carries the label column (wine's
`cultivar`), which the model predicts and does not take. Validation would answer
"records.0.cultivar: Input should be a valid number", or "unknown features
['cultivar']": both true, neither helpful. Every error about the model's label column
in `records` says instead that it is the label column, not a feature, and to drop it.

The model knows its label column through its dataset (service.models.service.LoadedModel.label);
once the dataset is deleted, the plain answers stand.

Two places see such a record: body validation (a label value that is not a number),
reworded by ``RecordsRoute``, and service.models.service (a numeric label value, an unknown
key), which words it with ``label_message``.
"""

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from service.core.errors import ServiceError
from service.models.service import ModelCache, cached_model

RECORDS = "records"
LABEL_COLUMN_ERROR = "label_column"  # the type of a reworded validation error


def label_message(label: str) -> str:
    """What to say about a record that carries the label column ``label``."""
    return f"{label!r} is the label column the model predicts, not a feature: drop it"


def record_key(location: Sequence[Any]) -> str | None:
    """The key of a validation error inside a record: loc (..., "records", <index>, <key>)."""
    parts = list(location)
    for at in range(len(parts) - 2):
        if parts[at] == RECORDS and isinstance(parts[at + 1], int):
            key = parts[at + 2]
            return key if isinstance(key, str) else None
    return None


def reworded(errors: Sequence[dict[str, Any]], label: str) -> list[dict[str, Any]] | None:
    """``errors`` with each one about the label column's value in a record reworded;
    None when none is about it."""
    if not any(record_key(error.get("loc", ())) == label for error in errors):
        return None
    return [
        {**error, "type": LABEL_COLUMN_ERROR, "msg": label_message(label)}
        if record_key(error.get("loc", ())) == label
        else error
        for error in errors
    ]


async def model_label(request: Request, model_id: str) -> str | None:
    """The label column of the model in the request's path; None if unknown or no model."""
    state = request.app.state
    cache = getattr(state, "model_cache", None) or ModelCache()
    try:
        entry = await run_in_threadpool(
            cached_model, database=state.database, cache=cache, model_id=model_id
        )
    except ServiceError:
        return None  # no such model: the body's errors stand, as on any route
    return entry.label


class RecordsRoute(APIRoute):
    """A route whose body may hold `records` for the model named by its path's model_id:
    validation errors about the model's label column in a record say so."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                model_id = request.path_params.get("model_id")
                if model_id is None or not any(
                    record_key(e.get("loc", ())) for e in error.errors()
                ):
                    raise
                label = await model_label(request, model_id)
                errors = reworded(error.errors(), label) if label is not None else None
                if errors is None:
                    raise
                raise RequestValidationError(errors, body=error.body) from None

        return handle
