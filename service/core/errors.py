"""One exception tree and the handlers that render RFC 9457 application/problem+json.

The same mistake gets the same answer on every route:

- an id in the PATH that names nothing is 404, detail "<resource> '<id>' does not exist"
  (``not_found``): the URL names no resource;
- an id in the BODY that names nothing is 422 with ``errors[{field, message}]``, the field
  being the id's path in the body and the detail "<field>: <resource> '<id>' does not
  exist" (``unknown_reference``): the route exists, the body is what is wrong;
- a 422 about one field, query parameter or header reads as a validation error does:
  detail "<field>: <message>", ``errors`` [{field, message}] (``field_problem``).

The order is the same on every route too: the request's shape first (a body that is not
JSON is 415, service.core.media_types; types and required fields 422), then what it names (an
unknown id in the path 404, then an unknown id in the body 422).
"""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
FASTAPI_BODY_ERROR = "There was an error parsing the body"  # fastapi.routing, a JSON body


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


def field_problem(field: str, message: str, **extra: Any) -> Unprocessable:
    """422 about one field, worded as a validation error: detail "field: message" and
    errors [{field, message}]; ``field`` is a body path, or query.<name> / header.<name>."""
    errors = [{"field": field, "message": message}]
    return Unprocessable(f"{field}: {message}", errors=errors, **extra)


def not_found(resource: str, resource_id: str) -> NotFound:
    """404 for an id in the request's path that names no ``resource``."""
    return NotFound(f"{resource} {resource_id!r} does not exist")


def unknown_reference(field: str, resource: str, resource_id: str) -> Unprocessable:
    """422 for an id at ``field`` of the request's body that names no ``resource``."""
    return field_problem(field, f"{resource} {resource_id!r} does not exist")


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


# Unions discriminated by a field: the field holding one -> its members' tags. pydantic puts
# the tag in an error's location (model.two_layer_network.activation); the request has no
# such level, so field paths leave it out. The schemas register their unions here.
TAGGED_UNIONS: dict[str, frozenset[str]] = {}


def register_tagged_union(field: str, tags: tuple[str, ...]) -> None:
    """Tell field_path that ``field`` holds a union whose members' tags are ``tags``."""
    TAGGED_UNIONS[field] = TAGGED_UNIONS.get(field, frozenset()) | frozenset(tags)


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """pydantic's ('body', 'training', 'epochs') as "training.epochs"; query/path keep a prefix.

    A discriminated union's tag is left out: ('body', 'model', 'logistic_regression',
    'hidden_units') is "model.hidden_units".
    """
    parts = [str(part) for part in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    kept = [
        part
        for index, part in enumerate(parts)
        if not (index and part in TAGGED_UNIONS.get(parts[index - 1], ()))
    ]
    return ".".join(kept) or "body"


def field_error(error: dict[str, Any]) -> dict[str, str]:
    """One pydantic/FastAPI validation error as {field, message}.

    FastAPI reports a body that is not JSON at ("body", <character offset>): the
    field is the body, and the offset and the parser's reason go in the message.
    """
    location = error.get("loc", ())
    if error.get("type") in ("union_tag_not_found", "union_tag_invalid"):
        # The union's field names the tag, e.g. model.type: report it there.
        tag = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
        message = "Field required" if error["type"] == "union_tag_not_found" else error["msg"]
        return {"field": f"{field_path(location)}.{tag}".lstrip("."), "message": message}
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        where = f" at character {location[1]}" if len(location) > 1 else ""
        return {"field": "body", "message": f"the body is not valid JSON: {reason}{where}"}
    return {"field": field_path(location), "message": error.get("msg", "invalid")}


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path.

    Starlette's 405 names only the methods of the first route whose path matches,
    but /v1/jobs is two routes (GET and POST): the Allow header must list both.
    """
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        route_methods = getattr(route.original_route, "methods", None)
        if route_methods and route.path_regex.match(path):
            methods.update(route_methods)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError) -> ProblemResponse:
        return problem(error.status, error.title, error.detail, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> ProblemResponse:
        errors = [field_error(e) for e in error.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, "Unprocessable Content", detail or "invalid request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> ProblemResponse:
        if error.status_code == 400 and error.detail == FASTAPI_BODY_ERROR:
            # Bytes json.loads cannot even decode (not UTF-8/16/32): FastAPI answers a bare
            # 400, where text that is not JSON is its 422 "JSON decode error". Both are a
            # body that is not JSON, and JSON routes document 422 for it.
            message = "the request body is not JSON (it is not UTF-8 text)"
            return problem(
                422,
                "Unprocessable Content",
                f"body: {message}",
                errors=[{"field": "body", "message": message}],
            )
        title = HTTPStatus(error.status_code).phrase
        detail = error.detail if isinstance(error.detail, str) else title
        response = problem(error.status_code, title, detail)
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        if error.status_code == 405 and (methods := allowed_methods(request)):
            response.headers["Allow"] = ", ".join(methods)
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
