"""415 for a body that is not JSON, on every route that takes a JSON body.

FastAPI parses a body as JSON only when its Content-Type says JSON; any other body
reaches validation as bytes, and the client reads "Input should be a valid dictionary"
about a CSV it sent. Here such a request is answered 415 problem+json before it is
read, saying what to send instead. The routes come from the app itself (each APIRoute
with a body that is not a form), so a new JSON route is covered without a list to keep.
The upload route reads its body itself and keeps its own rules (service.datasets.uploads).

A request without Content-Type and without a body passes: validation then names the
missing body (422), as it names any missing field.
"""

import email.message
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, params
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from service.core.auth import route_path
from service.core.errors import problem
from service.core.limits import UPLOAD_METHOD, UPLOAD_PATH

JSON_MEDIA_TYPE = "application/json"
# The field by which a JSON body names a stored dataset, where the route has one.
DATASET_FIELD = "dataset_id"


def is_json(content_type: str) -> bool:
    """True for the media types FastAPI parses as JSON: application/json, application/*+json."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def property_names(schema: Any) -> set[str]:
    """Every property name anywhere in a JSON schema (through $defs, anyOf, oneOf, items)."""
    if isinstance(schema, list):
        return set().union(*(property_names(item) for item in schema))
    if not isinstance(schema, dict):
        return set()
    names = set(schema.get("properties", {}))
    return names.union(*(property_names(value) for value in schema.values()))


@dataclass(frozen=True)
class JsonRoute:
    """A route whose body is JSON: where it is, and how its 415 is worded."""

    methods: frozenset[str]
    path_format: str
    path_regex: re.Pattern[str]
    takes_dataset_id: bool

    def unsupported(self, content_type: str | None) -> str:
        """The 415 detail for a body sent as ``content_type`` (None: no Content-Type)."""
        shown = repr(content_type) if content_type else "'(none)'"
        upload = f"a CSV or Parquet file is uploaded with {UPLOAD_METHOD} {UPLOAD_PATH}"
        if self.takes_dataset_id:
            upload += f", then named here by its {DATASET_FIELD}"
        return (
            f"Content-Type {shown} is not supported; send a JSON body with Content-Type: "
            f"{JSON_MEDIA_TYPE} ({upload})"
        )


def json_routes(routes: Iterable[Any]) -> list[JsonRoute]:
    """The app's routes that take a JSON body (not a form, not the upload)."""
    found = []
    for context in iter_route_contexts(routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        if isinstance(route.body_field.field_info, params.Form):  # File is a Form too
            continue
        schema = TypeAdapter(route.body_field.field_info.annotation).json_schema()
        found.append(
            JsonRoute(
                methods=frozenset(route.methods),
                path_format=context.path_format,
                path_regex=context.path_regex,
                takes_dataset_id=DATASET_FIELD in property_names(schema),
            )
        )
    return found


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def has_body(scope: Scope) -> bool:
    """Whether the request says it carries a body (Content-Length > 0, or chunked)."""
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return _header(scope, b"transfer-encoding") is not None


class JsonBodyMiddleware:
    """415 problem+json for a request to a JSON route whose Content-Type is not JSON."""

    def __init__(self, app: ASGIApp, routes: list[JsonRoute]):
        self.app = app
        self.routes = routes
        self.methods = frozenset().union(*(route.methods for route in routes))

    def route_of(self, scope: Scope) -> JsonRoute | None:
        path = route_path(scope)
        for route in self.routes:
            if scope["method"] in route.methods and route.path_regex.match(path):
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in self.methods:
            route = self.route_of(scope)
            content_type = _header(scope, b"content-type")
            if route is not None and (
                (content_type is not None and not is_json(content_type))
                or (content_type is None and has_body(scope))
            ):
                detail = route.unsupported(content_type)
                response = problem(415, "Unsupported Media Type", detail, allowed=[JSON_MEDIA_TYPE])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_json_bodies(app: FastAPI) -> None:
    """Answer 415 for non-JSON bodies on the app's JSON routes (call once routes exist)."""
    app.add_middleware(JsonBodyMiddleware, routes=json_routes(app.routes))
