"""Schema pieces every resource uses: the problem body, pages, documented error responses."""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

from service.core.errors import ServiceError


class FieldError(BaseModel):
    field: str = Field(description="Path of the offending field, e.g. `training.epochs`")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every 4xx and 5xx answer carries them."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(
        default=None, description="Validation errors, one per field (422 only)"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "model.activation: 'swish' is not one of ['sigmoid', 'tanh', ...]",
                    "errors": [{"field": "model.activation", "message": "..."}],
                }
            ]
        }
    }


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or wrong API key",
    404: "No such resource",
    409: "Conflicts with the resource's state",
    413: "Over a configured size limit",
    415: "Unsupported content type",
    422: "Validation failed; `errors` names each field",
    429: "Too many requests",
    503: "The database is unavailable; retry",
}


# What every list route answers to a `limit` outside 1..BACKPROP_PAGE_LIMIT (service.core.deps).
LIMIT_PROBLEM = "query.limit: must be between 1 and 100, got 0"

# The detail each code's example shows unless the route gives its own (`details=`).
_EXAMPLE_DETAILS = {
    400: "the request is malformed",
    401: "missing or wrong API key",
    404: "no such resource",
    409: "the resource's state does not allow this",
    413: "the request is over a configured size limit",
    415: "Content-Type 'text/plain' is not supported",
    422: LIMIT_PROBLEM,
    429: "too many requests; retry later",
    503: "the database is unavailable; retry shortly",
}


def json_answer(example: Any, description: str, **extra: Any) -> dict[str, Any]:
    """An OpenAPI response of JSON with ``example``; ``extra``: e.g. headers."""
    return {
        "description": description,
        "content": {"application/json": {"example": example}},
        **extra,
    }


def _title(code: int) -> str:
    """The title the service sends with ``code`` (its ServiceError's, else the HTTP phrase)."""
    titles = {error.status: error.title for error in ServiceError.__subclasses__()}
    return titles.get(code) or HTTPStatus(code).phrase


def problem_example(code: int, detail: str) -> dict[str, Any]:
    """A problem body as the service sends it; a 422's `errors` repeats "field: message"."""
    example: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(code),
        "status": code,
        "detail": detail,
    }
    if code == 422:
        field, _, message = detail.partition(": ")
        example["errors"] = [{"field": field, "message": message or detail}]
    return example


def problem_responses(
    *codes: int, details: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json answers for ``codes``.

    Each shows an example with its own status; ``details`` gives a route's own wording.
    """
    details = {**_EXAMPLE_DETAILS, **(details or {})}
    return {
        code: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {
                "application/problem+json": {
                    "example": problem_example(code, details.get(code, HTTPStatus(code).phrase))
                }
            },
        }
        for code in codes
    }
