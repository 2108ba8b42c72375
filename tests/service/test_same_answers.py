"""One rule, one answer, everywhere: the same mistake gets the same answer on every route.

The routes come from the app itself, so a route added later is covered without being
listed here, or fails here for want of a decision (a valid body to send it):

- an id in the PATH that names nothing: 404, detail "<resource> '<id>' does not exist",
  no `errors` (the URL names no resource);
- an id in the BODY that names nothing: 422, detail "<field>: <resource> '<id>' does not
  exist" and `errors` [{field, message}] (the route exists; the body is what is wrong);
- a body that is not JSON on a route that takes JSON: 415 naming its Content-Type and
  saying what to send instead, documented in the OpenAPI document on each such route;
- any other 422 about one field, query parameter or header: detail "<field>: <message>";
- one order: the body's type, then the path's id, then the body's ids.

The label column in prediction records has its own module: test_label_column.py.
"""

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from service.app import create_app
from service.core.media_types import json_routes, property_names
from service.core.settings import Settings
from service.core.tables import Job, Sweep
from tests.service.factories import add_dataset, add_job, add_model, assert_problem

# The app's routes, read once at collection (the app touches no database until it serves).
_APP = create_app(Settings(database_url="sqlite://"))
OPERATIONS = sorted(
    (method, context.path_format)
    for context in iter_route_contexts(_APP.routes)
    if isinstance(context.original_route, APIRoute) and context.include_in_schema
    for method in context.original_route.methods
)
# Paths whose parameters are ids. The registry's name things by name, alias and version
# number: their 404s name what is missing (tests/service/registry/test_registry.py).
# A path with two ids (a model's batch prediction or evaluation) has its 404s tested with
# its rows, in tests/service/scoring/.
PATH_ID_OPERATIONS = [
    (m, p)
    for m, p in OPERATIONS
    if len(names := re.findall(r"\{([^}]+)\}", p)) == 1 and names[0].endswith("_id")
]
JSON_OPERATIONS = sorted((m, r.path_format) for r in json_routes(_APP.routes) for m in r.methods)
JSON_ROUTES = {route.path_format: route for route in json_routes(_APP.routes)}

# What each id names: a path parameter or a body field called <resource>_id.
RESOURCES = {
    "dataset_id": "dataset",
    "job_id": "job",
    "model_id": "model",
    "sweep_id": "sweep",
    "key_id": "API key",
}
MISSING_IDS = ["0" * 32, "x" * 500]  # an id no row has; one no row can have
CSV = b"x0,x1,y\n1,2,0\n3,4,1\n"


@pytest.fixture
def ids(client, database) -> dict[str, str]:
    """Ids of real rows, by path parameter name: a dataset, a queued job, a model, a sweep."""
    model_id = add_model(database)
    dataset_id = add_dataset(database, rows=20, features=2)  # x0, x1: the model's features
    sweep = client.post(
        "/v1/sweeps", json=BODIES[("POST", "/v1/sweeps")]({"dataset_id": dataset_id})
    )
    # A registered model whose alias points at the model: the registry's routes' rows.
    assert client.post("/v1/registered-models", json={"name": "churn"}).status_code == 201
    registered = client.post("/v1/registered-models/churn/versions", json={"model_id": model_id})
    assert registered.status_code == 201, registered.text
    alias = client.put("/v1/registered-models/churn/aliases/production", json={"version": 1})
    assert alias.status_code == 200, alias.text
    assert sweep.status_code == 202, sweep.text
    return {
        "dataset_id": dataset_id,
        "job_id": add_job(database, dataset_id),
        "model_id": model_id,
        "sweep_id": sweep.json()["id"],
        "name": "churn",
        "alias": "production",
        "version": "1",
    }


# A valid body for each JSON operation, given a dataset id; and the fields in it that
# name another resource. A new JSON operation needs an entry (see the first test).
BODIES: dict[tuple[str, str], Callable[[str], dict[str, Any]]] = {
    ("POST", "/v1/jobs"): lambda ids: {
        "dataset_id": ids["dataset_id"],
        "model": {"type": "logistic_regression"},
        "training": {"epochs": 5},
    },
    ("POST", "/v1/sweeps"): lambda ids: {
        "dataset_id": ids["dataset_id"],
        "model": {"type": "logistic_regression"},
        "training": {"epochs": 5},
        "search": {"strategy": "grid", "space": {"learning_rate": [0.01, 0.1]}},
    },
    ("POST", "/v1/models/{model_id}/predictions"): lambda ids: {"dataset_id": ids["dataset_id"]},
    ("POST", "/v1/models/{model_id}/batch-predictions"): lambda ids: {
        "dataset_id": ids["dataset_id"]
    },
    ("POST", "/v1/models/{model_id}/evaluations"): lambda ids: {"dataset_id": ids["dataset_id"]},
    ("POST", "/v1/registered-models"): lambda ids: {"name": "another"},
    ("POST", "/v1/registered-models/{name}/versions"): lambda ids: {"model_id": ids["model_id"]},
    ("PUT", "/v1/registered-models/{name}/aliases/{alias}"): lambda ids: {"version": 1},
    ("POST", "/v1/registered-models/{name}/aliases/{alias}/predictions"): lambda ids: {
        "dataset_id": ids["dataset_id"]
    },
    ("POST", "/v1/keys"): lambda ids: {"role": "reader"},
    ("PUT", "/v1/project/quotas"): lambda ids: {},  # every quota back to the service's
}
BODY_ID_FIELDS = {  # a dotted name: a field of an object in the body
    ("POST", "/v1/jobs"): ["dataset_id", "warm_start.model_id"],
    ("POST", "/v1/sweeps"): ["dataset_id"],
    ("POST", "/v1/models/{model_id}/predictions"): ["dataset_id"],
    ("POST", "/v1/models/{model_id}/batch-predictions"): ["dataset_id"],
    ("POST", "/v1/models/{model_id}/evaluations"): ["dataset_id"],
    ("POST", "/v1/registered-models"): [],
    ("POST", "/v1/registered-models/{name}/versions"): ["model_id"],
    ("PUT", "/v1/registered-models/{name}/aliases/{alias}"): [],
    ("POST", "/v1/registered-models/{name}/aliases/{alias}/predictions"): ["dataset_id"],
    ("POST", "/v1/keys"): [],
    ("PUT", "/v1/project/quotas"): [],
}
BODY_REFERENCES = [(op, field) for op, fields in BODY_ID_FIELDS.items() for field in fields]
# The query parameters an operation requires, so that only its path is wrong.
QUERIES = {("GET", "/v1/models/{model_id}/export"): {"format": "onnx"}}


def filled(path_format: str, ids: dict[str, str]) -> str:
    """The path with each {parameter} replaced by its id."""
    return re.sub(r"\{([^}]+)\}", lambda match: ids[match.group(1)], path_format)


def request(client, method: str, path_format: str, ids: dict[str, str]):
    """``method`` on ``path_format`` with ``ids`` filled in, and the operation's valid body
    if it takes one."""
    path = filled(path_format, ids)
    params = QUERIES.get((method, path_format))
    body = BODIES.get((method, path_format))
    if body is None:
        return client.request(method, path, params=params)
    return client.request(method, path, params=params, json=body(ids))


def body_schema(method: str, path: str) -> dict[str, Any]:
    """The JSON schema of the operation's body, as the app validates it."""
    for context in iter_route_contexts(_APP.routes):
        route = context.original_route
        if context.path_format == path and method in getattr(route, "methods", ()):
            return TypeAdapter(route.body_field.field_info.annotation).json_schema()
    raise LookupError((method, path))


def test_every_json_operation_has_a_decided_body_and_reference_fields():
    # A new JSON operation, or a new *_id field in a body, fails here until it is listed.
    assert sorted(BODIES) == sorted(BODY_ID_FIELDS) == JSON_OPERATIONS
    for (method, path), fields in BODY_ID_FIELDS.items():
        names = property_names(body_schema(method, path))
        leaves = sorted(field.rsplit(".", 1)[-1] for field in fields)
        assert sorted(n for n in names if n.endswith("_id")) == leaves, (method, path)
    assert len(PATH_ID_OPERATIONS) >= 11  # the derivation found the app's routes


@pytest.mark.parametrize(("method", "path"), PATH_ID_OPERATIONS)
def test_an_unknown_id_in_the_path_is_404_naming_it(client, ids, method, path):
    (parameter,) = re.findall(r"\{([^}]+)\}", path)
    for missing in MISSING_IDS:  # one fixture for both: its rows cost more than a request
        response = request(client, method, path, {**ids, parameter: missing})
        problem = assert_problem(response, 404)
        assert problem == {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": f"{RESOURCES[parameter]} {missing!r} does not exist",
        }


@pytest.mark.parametrize(("operation", "field"), BODY_REFERENCES)
def test_an_unknown_id_in_the_body_is_422_naming_the_field(client, database, ids, operation, field):
    method, path = operation
    jobs_before = count(database, Job)
    for missing in [*MISSING_IDS, "a\x00b", ""]:
        body = BODIES[operation](ids)
        *parents, leaf = field.split(".")
        holder = body
        for parent in parents:
            holder = holder.setdefault(parent, {})
        holder[leaf] = missing
        problem = assert_problem(client.request(method, filled(path, ids), json=body), 422)
        message = f"{RESOURCES[leaf]} {missing!r} does not exist"
        assert problem["detail"] == f"{field}: {message}", missing
        assert problem["errors"] == [{"field": field, "message": message}], missing
    assert count(database, Job) == jobs_before
    assert count(database, Sweep) == 1  # the fixture's


def count(database, table) -> int:
    with database.reads() as session:
        return session.query(table).count()


NOT_JSON = ["text/csv", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]


@pytest.mark.parametrize("content_type", [*NOT_JSON, None])
@pytest.mark.parametrize(("method", "path"), JSON_OPERATIONS)
def test_a_body_that_is_not_json_is_415_saying_what_to_send(
    client, database, method, path, content_type
):
    # Ids no row has: the body's type is judged before anything is looked up.
    nothing = {**dict.fromkeys(RESOURCES, MISSING_IDS[0]), "name": "none", "alias": "none"}
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.request(method, filled(path, nothing), content=CSV, headers=headers)
    problem = assert_problem(response, 415)
    shown = repr(content_type) if content_type else "'(none)'"
    # Where a route takes a dataset_id, the answer says how a file becomes one.
    named = ", then named here by its dataset_id" if JSON_ROUTES[path].takes_dataset_id else ""
    assert problem["detail"] == (
        f"Content-Type {shown} is not supported; send a JSON body with Content-Type: "
        f"application/json (a CSV or Parquet file is uploaded with POST /v1/datasets{named})"
    )
    assert problem["allowed"] == ["application/json"]
    assert count(database, Job) == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x+json"])
def test_json_with_a_charset_or_a_json_suffix_is_json(client, ids, content_type):
    body = b'{"dataset_id": "%s"}' % ids["dataset_id"].encode()
    response = client.post(
        f"/v1/models/{ids['model_id']}/predictions",
        content=body,
        headers={"content-type": content_type},
    )
    assert response.status_code == 200, response.text


def test_a_json_route_without_a_body_or_content_type_is_422_body_required(client):
    problem = assert_problem(client.post("/v1/jobs"), 422)
    assert problem["errors"] == [{"field": "body", "message": "Field required"}]


def test_the_upload_route_keeps_its_own_415(client):
    response = client.post("/v1/datasets", json={"rows": [[1, 2]]})
    problem = assert_problem(response, 415)
    assert problem["detail"].startswith("Content-Type 'application/json' is not supported; ")
    assert "multipart/form-data" in problem["allowed"]


@pytest.mark.parametrize(("method", "path"), JSON_OPERATIONS)
def test_every_json_operation_documents_its_415(method, path):
    operation = _APP.openapi()["paths"][path][method.lower()]
    documented = operation["responses"]["415"]["content"]["application/problem+json"]
    assert documented["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert documented["example"] == {
        "type": "about:blank",
        "title": "Unsupported Media Type",
        "status": 415,
        "detail": JSON_ROUTES[path].unsupported("text/csv"),
        "allowed": ["application/json"],
    }


# Each a mistake about one field, on a route that takes JSON, a query parameter or a
# header: the service's own checks and the schema's validation alike.
FIELD_MISTAKES: dict[str, Callable[[dict[str, str]], tuple[str, str, dict[str, Any]]]] = {
    "body field of the wrong type": lambda ids: (
        "POST",
        "/v1/jobs",
        {"json": {**BODIES[("POST", "/v1/jobs")](ids), "model": "big"}},
    ),
    "unknown body field": lambda ids: (
        "POST",
        "/v1/sweeps",
        {"json": {**BODIES[("POST", "/v1/sweeps")](ids), "colour": "red"}},
    ),
    "engine range": lambda ids: (
        "POST",
        "/v1/jobs",
        {"json": {"dataset_id": ids["dataset_id"], "training": {"epochs": 0}}},
    ),
    "unknown sweep dimension": lambda ids: (
        "POST",
        "/v1/sweeps",
        {
            "json": {
                **BODIES[("POST", "/v1/sweeps")](ids),
                "search": {"strategy": "grid", "space": {"colour": ["red"]}},
            }
        },
    ),
    "dataset that cannot be trained on": lambda ids: (
        "POST",
        "/v1/jobs",
        {"json": {"dataset_id": ids["one_class_dataset_id"]}},
    ),
    "no prediction input": lambda ids: (
        "POST",
        f"/v1/models/{ids['model_id']}/predictions",
        {"json": {}},
    ),
    "empty prediction rows": lambda ids: (
        "POST",
        f"/v1/models/{ids['model_id']}/predictions",
        {"json": {"rows": []}},
    ),
    "prediction row of the wrong length": lambda ids: (
        "POST",
        f"/v1/models/{ids['model_id']}/predictions",
        {"json": {"rows": [[1.0]]}},
    ),
    "prediction value not a number": lambda ids: (
        "POST",
        f"/v1/models/{ids['model_id']}/predictions",
        {"json": {"rows": [[1.0, "two"]]}},
    ),
    "unknown job state in the query": lambda ids: ("GET", "/v1/jobs", {"params": {"status": "x"}}),
    "cursor this service did not issue": lambda ids: (
        "GET",
        "/v1/sweeps",
        {"params": {"cursor": "not-a-cursor"}},
    ),
    "query parameter of the wrong type": lambda ids: (
        "GET",
        f"/v1/models/{ids['model_id']}",
        {"params": {"include_parameters": "maybe"}},
    ),
    "header that is not an epoch": lambda ids: (
        "GET",
        f"/v1/jobs/{ids['job_id']}/events",
        {"headers": {"Last-Event-ID": "soon"}},
    ),
}


@pytest.mark.parametrize("mistake", FIELD_MISTAKES)
def test_a_422_about_a_field_reads_field_colon_message(client, database, ids, mistake):
    ids = {**ids, "one_class_dataset_id": add_dataset(database, classes=("spam",))}
    method, path, kwargs = FIELD_MISTAKES[mistake](ids)
    problem = assert_problem(client.request(method, path, **kwargs), 422)
    first = problem["errors"][0]
    assert set(first) == {"field", "message"}
    assert problem["detail"].startswith(f"{first['field']}: {first['message']}"), problem
    assert not first["message"].startswith(f"{first['field'].rpartition('.')[2]}:"), problem


@pytest.mark.parametrize(
    ("method", "path"),
    [op for op, field in BODY_REFERENCES if op in PATH_ID_OPERATIONS],
)
def test_an_unknown_path_id_is_answered_before_an_unknown_body_id(client, ids, method, path):
    (parameter,) = re.findall(r"\{([^}]+)\}", path)
    missing = "0" * 32
    body = {field: missing for op, field in BODY_REFERENCES if op == (method, path)}
    response = client.request(method, filled(path, {**ids, parameter: missing}), json=body)
    problem = assert_problem(response, 404)
    assert problem["detail"] == f"{RESOURCES[parameter]} {missing!r} does not exist"


def test_a_non_json_body_is_415_even_over_the_json_body_limit(settings):
    small = create_app(settings.model_copy(update={"max_json_body_bytes": 100}))
    with TestClient(small) as client:
        response = client.post("/v1/jobs", content=CSV * 100, headers={"content-type": "text/csv"})
    assert_problem(response, 415)
