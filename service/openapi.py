"""The OpenAPI document as the service really answers: errors are application/problem+json.

FastAPI documents every error response under application/json, and its
automatic 422 as ``HTTPValidationError``; this service sends RFC 9457 problem
details for all of them, so the document says so.

FastAPI also renders the document with ``exclude_none``, which deletes every
``"key": null`` inside the examples (fastapi/fastapi#5559): a job example would
lack its required ``stop_reason``, and a request example's ``"early_stopping":
null`` (no early stopping) would become the default (early stopping on). The
examples are therefore copied again from where they are written.

The limits and the API keys are enforced by middleware (service.core.limits,
service.core.auth), which FastAPI cannot see: their answers are added here. Every
operation with a JSON body may get 413 (BACKPROP_MAX_JSON_BODY_BYTES); the two
that queue jobs may get 429 (queued jobs per key); and every operation with a JSON body
answers 415 to a body of another type (service.core.media_types). With API keys configured the
document declares the two ways to send one (HTTP bearer, X-API-Key header), so
Swagger UI's "Authorize" button works, requires them of every operation but the
probes, and documents 401 on each and 403 (read-only key) on each that changes
something. Without keys it declares no security: the API then asks for none.

The document states every rule JSON Schema can (issue 10), so that generated clients
and validators agree with the service: the limits set at run time (page size, epochs,
hidden units, prediction rows: settings_limits), integer bounds exactly
(exact_integers), the prediction body as the `oneOf` of its three shapes (shown_as),
and the search spaces' ranges as components referenced by `$ref` (hoisted).
"""

from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, TypeAdapter

from engine import TRAINING_BOUNDS, ModelSpec, TrainingSpec
from service.core.auth import REALM
from service.core.limits import QUEUE_RETRY_AFTER_SECONDS, UPLOAD_METHOD, UPLOAD_PATH
from service.core.media_types import JSON_MEDIA_TYPE, json_routes
from service.core.pagination import DEFAULT_PAGE
from service.core.public import PUBLIC_PATHS
from service.core.roles import ROUTE_ROLES, Role
from service.core.schemas import problem_example
from service.core.settings import Settings
from service.models.schemas import PREDICTION_BODY
from service.sweeps.space import RANGE_MODELS

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key, sent as `Authorization: Bearer <key>`: one made with "
        "`backprop keys create` or POST /v1/keys (a project's reader, trainer or admin), or "
        "from BACKPROP_API_KEYS (admins of the default project) or "
        "BACKPROP_READ_ONLY_API_KEYS (its readers). Needed once any key exists.",
    },
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same key, sent as `X-API-Key: <key>`",
    },
}
QUEUEING_OPERATIONS = {("post", "/v1/jobs"), ("post", "/v1/sweeps")}


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


def _problem_response(
    code: int, description: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A documented problem+json answer; ``headers`` maps each header name to its meaning."""
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/problem+json": {
                "schema": PROBLEM_REF,
                "example": {**problem_example(code, detail), **extra},
            }
        },
    }
    if headers:
        response["headers"] = {
            name: {"description": meaning, "schema": {"type": "string"}}
            for name, meaning in headers.items()
        }
    return response


def _has_json_body(operation: dict[str, Any]) -> bool:
    return "application/json" in operation.get("requestBody", {}).get("content", {})


def limits_and_keys(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Add the middleware's answers: 413 (JSON body), 429 (queue), 401 and 403 (keys, which
    the database may hold whatever the settings say), and each operation's least role."""
    limit = settings.max_json_body_bytes
    body_too_large = _problem_response(
        413,
        "The JSON body is over BACKPROP_MAX_JSON_BODY_BYTES, or a field over its own limit",
        f"JSON request bodies are limited to {limit:,} bytes (BACKPROP_MAX_JSON_BODY_BYTES, "
        f"max_json_body_bytes) and this one declares {limit + 1:,} bytes",
        limit=limit,
        setting="max_json_body_bytes",
    )
    queued = settings.max_queued_jobs_per_key
    queue_full = _problem_response(
        429,
        "The caller's API key has BACKPROP_MAX_QUEUED_JOBS_PER_KEY queued jobs; retry later",
        f"this API key has {queued:,} queued jobs; 1 more would pass the limit of {queued:,} "
        "queued jobs per key (BACKPROP_MAX_QUEUED_JOBS_PER_KEY, max_queued_jobs_per_key); "
        "retry once workers have started some of them",
        headers={"Retry-After": f"Seconds to wait, e.g. {QUEUE_RETRY_AFTER_SECONDS}"},
        limit=queued,
        setting="max_queued_jobs_per_key",
        queued=queued,
    )
    missing_key = _problem_response(
        401,
        "Missing or wrong API key",
        "this API needs a key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        headers={"WWW-Authenticate": f'{REALM} (with error="invalid_token" for a wrong key)'},
    )
    role_too_low = _problem_response(
        403,
        "The API key's role is below the operation's (x-required-role)",
        "this API key is a reader of project 'default': POST /v1/jobs needs the trainer role",
    )
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if _has_json_body(operation) and (method.upper(), path) != (UPLOAD_METHOD, UPLOAD_PATH):
                responses.setdefault("413", body_too_large)
            if (method, path) in QUEUEING_OPERATIONS:
                responses.setdefault("429", queue_full)
            if path in PUBLIC_PATHS:
                operation["security"] = []  # the probes answer without a key
                continue
            role = ROUTE_ROLES[f"{method.upper()} {path}"]
            operation["x-required-role"] = role.name
            responses.setdefault("401", missing_key)
            if role > Role.reader:
                responses.setdefault("403", role_too_low)
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
    return document


def json_bodies_only(document: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    """Add 415 to every operation with a JSON body, worded as the middleware words it."""
    paths = document.get("paths", {})
    for route in json_routes(routes):
        for method in route.methods:
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue  # not in the document (include_in_schema=False)
            operation.setdefault("responses", {}).setdefault(
                "415",
                _problem_response(
                    415,
                    f"The body is not JSON: send it with Content-Type: {JSON_MEDIA_TYPE}",
                    route.unsupported("text/csv"),
                    allowed=[JSON_MEDIA_TYPE],
                ),
            )
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


def _require(schema: dict[str, Any], name: str) -> None:
    schema["required"] = sorted({*schema.get("required", []), name})
    schema["properties"][name].pop("default", None)


def settings_limits(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write this service's limits into the schemas that state them.

    Every list route's `limit` (service.core.deps.page_params) lies in 1..BACKPROP_PAGE_LIMIT;
    a job's `training.epochs` and a network's `hidden_units` (in jobs and sweeps) are at
    most BACKPROP_MAX_EPOCHS and BACKPROP_MAX_HIDDEN_UNITS.
    """
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            parameters = operation.get("parameters", [])
            names = {parameter.get("name") for parameter in parameters}
            for parameter in parameters:
                if parameter.get("name") == "limit" and "cursor" in names:
                    parameter["schema"]["maximum"] = settings.page_limit
                    parameter["schema"]["default"] = min(DEFAULT_PAGE, settings.page_limit)
    schemas = document.get("components", {}).get("schemas", {})
    rows = settings.max_prediction_rows  # more is a 413
    schemas["PredictRows"]["properties"]["rows"]["maxItems"] = rows
    schemas["PredictRecords"]["properties"]["records"]["maxItems"] = rows
    schemas["TrainingSpecIn"]["properties"]["epochs"]["maximum"] = settings.max_epochs
    schemas["TwoLayerNetworkIn"]["properties"]["hidden_units"]["maximum"] = (
        settings.max_hidden_units
    )
    # A limit below the engine's default makes the field one a request must give.
    if settings.max_epochs < TrainingSpec().epochs:
        _require(schemas["TrainingSpecIn"], "epochs")
        for request in ("JobCreate", "SweepCreate"):
            _require(schemas[request], "training")
    if settings.max_hidden_units < ModelSpec().hidden_units:
        _require(schemas["TwoLayerNetworkIn"], "hidden_units")
    grid = schemas["GridSearchIn"]["properties"]["space"]["properties"]
    random = schemas["RandomSearchIn"]["properties"]["space"]["properties"]
    for space in (grid, random):
        space["hidden_units"]["items"]["maximum"] = settings.max_hidden_units
    return document


def exact_integers(document: dict[str, Any]) -> dict[str, Any]:
    """Integer bounds as JSON integers, exactly.

    FastAPI's OpenAPI model holds `minimum`/`maximum` as floats: 1 becomes 1.0, and the
    seed's 2**63 - 1 becomes 2**63, a value the service refuses. Integral bounds below
    2**53 are exact as floats and become integers again; the seeds' upper bound is
    written again from the engine's table.
    """

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        if not isinstance(node, dict):
            return
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            value = node.get(key)
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
                node[key] = int(value)
        for value in node.values():
            visit(value)

    visit(document)
    schemas = document.get("components", {}).get("schemas", {})
    largest_seed = int(TRAINING_BOUNDS["seed"].high or 0)
    schemas["TrainingSpecIn"]["properties"]["seed"]["maximum"] = largest_seed
    random_seed = schemas["RandomSearchIn"]["properties"]["seed"]["anyOf"][0]
    random_seed["maximum"] = largest_seed
    return document


def shown_as(document: dict[str, Any], name: str, shown: TypeAdapter[Any]) -> dict[str, Any]:
    """Component ``name`` replaced by the schema of ``shown`` (its own components added).

    A request model that reads a body leniently, to answer one clear 422, is shown as the
    precise union of shapes it accepts.
    """
    schema = shown.json_schema(ref_template="#/components/schemas/{model}")
    schemas = document["components"]["schemas"]
    schemas.update(schema.pop("$defs", {}))
    schemas[name] = {"title": name, **schema}
    return document


def hoisted(document: dict[str, Any], titles: set[str]) -> dict[str, Any]:
    """Each inline schema titled one of ``titles`` as a component, referenced by `$ref`.

    pydantic inlines a schema built inside another's (the search spaces' ranges); client
    generators name an inline schema by its title, and two inline schemas with one title
    made openapi-python-client drop the operation. A component has one name and one place.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})

    def visit(node: Any) -> Any:
        if isinstance(node, list):
            return [visit(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: visit(value) for key, value in node.items()}
        title = node.get("title")
        if isinstance(title, str) and title in titles and "properties" in node:
            schemas[title] = node
            return {"$ref": f"#/components/schemas/{title}"}
        return node

    document["paths"] = visit(document.get("paths", {}))
    for name in list(schemas):
        if name not in titles:
            schemas[name] = visit(schemas[name])
    return document


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Replace ``app.openapi`` with one that renders problem details, built once.

    The limits in its examples are ``settings``'; with API keys in ``settings`` the
    document says how to send one.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document = examples_as_written(document, app.routes)
            document = shown_as(document, "PredictionRequest", PREDICTION_BODY)
            document = hoisted(document, {model.__name__ for model in RANGE_MODELS.values()})
            document = limits_and_keys(document, settings)
            document = json_bodies_only(document, app.routes)
            document = settings_limits(document, settings)
            document = exact_integers(document)
            app.openapi_schema = problem_details_everywhere(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
