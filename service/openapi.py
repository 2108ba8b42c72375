"""The OpenAPI document as the service really answers: errors are application/problem+json.

FastAPI documents every error response under application/json, and its
automatic 422 as ``HTTPValidationError``; this service sends RFC 9457 problem
details for all of them, so the document says so.

FastAPI also renders the document with ``exclude_none``, which deletes every
``"key": null`` inside the examples (fastapi/fastapi#5559): a job example would
lack its required ``stop_reason``, and a request example's ``"early_stopping":
null`` (no early stopping) would become the default (early stopping on). The
examples are therefore copied again from where they are written.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, TypeAdapter

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_details_everywhere(document: dict[str, Any]) -> dict[str, Any]:
    """Move every 4xx/5xx response body to application/problem+json with the Problem schema."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if not (code.isdigit() and int(code) >= 400):
                    continue
                content = response.setdefault("content", {})
                documented = content.pop("application/json", {})
                problem = content.setdefault("application/problem+json", {})
                problem["schema"] = PROBLEM_REF
                for key in ("example", "examples"):
                    if key in documented and key not in problem:
                        problem[key] = documented[key]
                for media_type in set(content) - {"application/problem+json"}:
                    del content[media_type]  # e.g. a stream's text/event-stream: errors never are
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _copy_examples(written: Any, document: Any) -> None:
    """Overwrite each example in ``document`` with the one at the same place in ``written``."""
    if not (isinstance(written, dict) and isinstance(document, dict)):
        return
    for key, value in written.items():
        if key in document:
            if key in ("example", "examples"):
                document[key] = jsonable_encoder(value)  # without exclude_none: nulls stay
            else:
                _copy_examples(value, document[key])


def examples_as_written(document: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    """Every example as its route or model writes it, nulls included."""
    schemas = document.get("components", {}).get("schemas", {})
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        written: dict[str, Any] = {
            "responses": {str(code): response for code, response in route.responses.items()},
            **(route.openapi_extra or {}),
        }
        types = [route.response_model, *(r.get("model") for r in route.responses.values())]
        if route.body_field is not None:
            body = route.body_field.field_info
            written["requestBody"] = {
                "content": {body.media_type: {"examples": body.openapi_examples}}
            }
            types.append(body.annotation)
        for method in route.methods:
            _copy_examples(written, document["paths"][route.path_format][method.lower()])
        for model in filter(None, types):  # their components' examples (json_schema_extra)
            for mode in ("validation", "serialization"):
                generated = TypeAdapter(model).json_schema(mode=mode)
                named = dict(generated.pop("$defs", {}))
                if isinstance(model, type) and issubclass(model, BaseModel):
                    named[model.__name__] = generated
                for name, schema in named.items():
                    for component in (name, f"{name}-Input", f"{name}-Output"):
                        _copy_examples(schema, schemas.get(component))
    return document


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that renders problem details, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document = examples_as_written(document, app.routes)
            app.openapi_schema = problem_details_everywhere(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
