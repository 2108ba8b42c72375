"""The OpenAPI document as the service really answers: errors are application/problem+json.

FastAPI documents every error response under application/json, and its
automatic 422 as ``HTTPValidationError``; this service sends RFC 9457 problem
details for all of them, so the document says so.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
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
            app.openapi_schema = problem_details_everywhere(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
