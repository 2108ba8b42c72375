"""One exception tree and the handlers that render RFC 9457 application/problem+json."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ServiceError(Exception):
    """An error the client should see: status, a short title, a specific detail."""

    status: int = 500
    title: str = "Internal Server Error"

    def __init__(self, detail: str, *, title: str | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        if title is not None:
            self.title = title
        self.extra = extra  # more members of the problem object, e.g. errors, limit


class BadRequest(ServiceError):
    status, title = 400, "Bad Request"


class NotFound(ServiceError):
    status, title = 404, "Not Found"


class Conflict(ServiceError):
    status, title = 409, "Conflict"


class PayloadTooLarge(ServiceError):
    status, title = 413, "Content Too Large"


class UnsupportedMediaType(ServiceError):
    status, title = 415, "Unsupported Media Type"


class Unprocessable(ServiceError):
    """422: well-formed but unusable; ``errors`` lists each field path and reason."""

    status, title = 422, "Unprocessable Content"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any):
        if field is not None and "errors" not in extra:
            extra["errors"] = [{"field": field, "message": detail}]
        super().__init__(detail, **extra)


class Unavailable(ServiceError):
    status, title = 503, "Service Unavailable"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> ProblemResponse:
    """A problem+json response; ``extra`` becomes more members of the body."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return ProblemResponse(body, status_code=status, headers=headers)


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """pydantic's ('body', 'training', 'epochs') as "training.epochs"; query/path keep a prefix."""
    parts = [str(part) for part in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError) -> ProblemResponse:
        return problem(error.status, error.title, error.detail, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> ProblemResponse:
        errors = [
            {"field": field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in error.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, "Unprocessable Content", detail or "invalid request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> ProblemResponse:
        title = HTTPStatus(error.status_code).phrase
        detail = error.detail if isinstance(error.detail, str) else title
        response = problem(error.status_code, title, detail)
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, error: OperationalError) -> ProblemResponse:
        log.warning("database unavailable: %s", error.orig)
        response = problem(503, "Service Unavailable", "the database is unavailable; retry shortly")
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, error: DBAPIError) -> ProblemResponse:
        if error.connection_invalidated:
            return await database_unavailable(request, error)  # type: ignore[arg-type]
        log.exception("database error", exc_info=error)
        return problem(500, "Internal Server Error", "an unexpected database error occurred")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> ProblemResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        return problem(500, "Internal Server Error", "an unexpected error occurred")
