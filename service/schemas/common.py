"""Schema pieces every resource uses: the problem body, pages, documented error responses."""

from typing import Any

from pydantic import BaseModel, Field


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


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json answers for ``codes``."""
    return {
        code: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {"application/problem+json": {}},
        }
        for code in codes
    }
