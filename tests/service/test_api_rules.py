"""One rule, one answer, everywhere (issue 10): each rule checked on every route it governs.

The routes come from the OpenAPI document the app serves, so a new list route, a new
request that takes a model spec or a new path id is covered here without editing this
file: a route the rule applies to but this file cannot exercise fails loudly instead.

- Pages: every list route declares `limit` (1 to BACKPROP_PAGE_LIMIT, 100 here) and
  `cursor`, answers a `limit` outside the range with the same 422 naming `query.limit`,
  and reads an empty `cursor` as the first page.
- Model specs: a union discriminated by `type`, in every request and every response;
  a logistic regression has no hidden layer, so its hidden_units and activation are
  refused (422 naming the field) and never shown, not even for rows stored before.
- Ranges: every range the engine's spec dataclasses check is stated in the document,
  from the same tables (engine.specs.Bounds): a value just outside is refused by the
  document and by the service alike, the value at a closed end accepted by both.
- Ids: every id in a path is documented with the pattern service.core.tables.new_id makes.
"""

import re
from dataclasses import asdict
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import engine
from engine import (
    HIDDEN_LAYER_FIELDS,
    MODEL_BOUNDS,
    STOPPING_BOUNDS,
    TRAINING_BOUNDS,
    Bounds,
    ModelSpec,
    TrainingSpec,
)
from service.app import create_app
from service.core.api_keys import create_key
from service.core.audit import record
from service.core.bounds import ID_PATTERN
from service.core.roles import Role
from service.core.settings import Settings
from service.core.tables import RegisteredModel, Sweep, new_id
from service.core.tenancy import DEFAULT_PROJECT
from service.keys.schemas import KEY_ID_PATTERN
from service.registry.schemas import NAME_PATTERN
from tests.service.factories import add_dataset, add_job, add_model, assert_problem

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
PAGE_LIMIT = 100  # BACKPROP_PAGE_LIMIT's default, which the test app keeps


def served_document() -> dict[str, Any]:
    """/openapi.json of an app with the default settings (building it touches no database)."""
    return create_app(Settings(database_url="sqlite://")).openapi()


DOCUMENT = served_document()
SCHEMAS = DOCUMENT["components"]["schemas"]


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].removeprefix("#/components/schemas/")]
    return schema


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def is_page(schema: dict[str, Any]) -> bool:
    """A page of a listing: an object of `data` (a list) and `next_cursor`."""
    properties = resolve(schema).get("properties", {})
    return "next_cursor" in properties and properties.get("data", {}).get("type") == "array"


def list_paths() -> list[str]:
    """Every GET whose 200 answer is a page."""
    return sorted(
        path
        for method, path, operation in operations()
        if method == "GET"
        and is_page(
            operation["responses"]["200"]
            .get("content", {})
            .get("application/json", {})
            .get("schema", {})
        )
    )


def request_schema(operation: dict[str, Any]) -> dict[str, Any]:
    content = operation.get("requestBody", {}).get("content", {})
    return resolve(content.get("application/json", {}).get("schema", {}))


def model_spec_routes() -> list[str]:
    """Every operation whose JSON body has a `model` spec."""
    return sorted(
        f"{method} {path}"
        for method, path, operation in operations()
        if "model" in request_schema(operation).get("properties", {})
    )


LIST_PATHS = list_paths()
MODEL_SPEC_ROUTES = model_spec_routes()


def test_the_rules_find_the_routes_they_govern():
    assert LIST_PATHS == [
        "/v1/audit-events",
        "/v1/datasets",
        "/v1/jobs",
        "/v1/keys",
        "/v1/models",
        "/v1/registered-models",
        "/v1/sweeps",
    ]
    assert MODEL_SPEC_ROUTES == ["POST /v1/jobs", "POST /v1/sweeps"]


# Pages.


def parameter(path: str, name: str) -> dict[str, Any]:
    parameters = DOCUMENT["paths"][path]["get"]["parameters"]
    return next(p for p in parameters if p["name"] == name)


@pytest.mark.parametrize("path", LIST_PATHS)
def test_every_list_route_declares_limit_1_to_100_and_a_cursor(path):
    limit = parameter(path, "limit")
    assert limit["in"] == "query"
    assert {k: limit["schema"][k] for k in ("type", "minimum", "maximum", "default")} == {
        "type": "integer",
        "minimum": 1,
        "maximum": PAGE_LIMIT,
        "default": 50,
    }
    assert parameter(path, "cursor")["schema"]["type"] == "string"


def limit_problem(limit: int) -> dict[str, Any]:
    message = f"must be between 1 and {PAGE_LIMIT}, got {limit}"
    return {
        "type": "about:blank",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": f"query.limit: {message}",
        "errors": [{"field": "query.limit", "message": message}],
    }


@pytest.mark.parametrize("limit", [0, -1, PAGE_LIMIT + 1, 1000])
@pytest.mark.parametrize("path", LIST_PATHS)
def test_a_limit_outside_1_to_100_is_the_same_422_on_every_list_route(client, path, limit):
    response = client.get(path, params={"limit": limit})
    assert assert_problem(response, 422) == limit_problem(limit)


@pytest.mark.parametrize("path", LIST_PATHS)
def test_a_limit_that_is_not_an_integer_is_the_same_422_on_every_list_route(client, path):
    message = "Input should be a valid integer, unable to parse string as an integer"
    assert assert_problem(client.get(path, params={"limit": "many"}), 422) == {
        "type": "about:blank",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": f"query.limit: {message}",
        "errors": [{"field": "query.limit", "message": message}],
    }


def add_sweep(database, dataset_id: str) -> str:
    """A grid sweep of one trial, its specs stored complete as before issue 10."""
    with database.writes() as session, session.begin():
        sweep = Sweep(
            dataset_id=dataset_id,
            model_spec=asdict(ModelSpec()),  # a logistic regression with hidden_units 32
            training_spec=TrainingSpec(epochs=3).to_dict(),
            search={"strategy": "grid", "space": {"l2": [0.0]}, "n_trials": None, "seed": None},
        )
        session.add(sweep)
    add_job(database, dataset_id, sweep_id=sweep.id, trial={"l2": 0.0})
    return sweep.id


@pytest.fixture
def rows_of_every_kind(database) -> dict[str, str]:
    """Two rows or more in every listing: datasets, jobs, models, registered models and
    sweeps (ids by kind)."""
    model_id, _ = add_model(database), add_model(database)
    dataset_id = add_dataset(database)
    sweep_id, _ = add_sweep(database, dataset_id), add_sweep(database, dataset_id)
    with database.writes() as session, session.begin():
        session.add_all([RegisteredModel(name="first"), RegisteredModel(name="second")])
    return {"model": model_id, "sweep": sweep_id, "dataset": dataset_id}


@pytest.fixture
def admin_key(database, rows_of_every_kind) -> str:
    """Two keys and two audit events of the default project besides, for the listings of
    keys and of the log; returns the admin's key, which requests must now send."""
    with database.writes() as session, session.begin():
        key, _ = create_key(session, project=DEFAULT_PROJECT, role=Role.admin)
        create_key(session, project=DEFAULT_PROJECT, role=Role.reader)
        for target in ("first", "second"):
            record(session, "registered_model.create", target, project=DEFAULT_PROJECT)
    return key


@pytest.mark.parametrize("path", LIST_PATHS)
def test_an_empty_cursor_is_the_first_page_on_every_list_route(client, admin_key, path):
    headers = {"Authorization": f"Bearer {admin_key}"}
    first = client.get(path, params={"limit": 1}, headers=headers)
    assert first.status_code == 200
    assert first.json()["next_cursor"] is not None  # there is a second page
    empty = client.get(path, params={"limit": 1, "cursor": ""}, headers=headers)
    assert empty.status_code == 200
    assert empty.json() == first.json()


@pytest.mark.parametrize("limit", [1, PAGE_LIMIT])
@pytest.mark.parametrize("path", LIST_PATHS)
def test_a_limit_at_either_end_is_a_page_on_every_list_route(client, path, limit):
    assert client.get(path, params={"limit": limit}).status_code == 200


# Model specs.

LOGISTIC_FIELDS = {"type", "init", "init_scale"}
NETWORK_FIELDS = LOGISTIC_FIELDS | set(HIDDEN_LAYER_FIELDS)


def is_model_spec_union(schema: dict[str, Any], suffix: str) -> bool:
    """`oneOf` the two members, discriminated by `type`, each with only its own fields."""
    members = {
        "logistic_regression": f"#/components/schemas/LogisticRegression{suffix}",
        "two_layer_network": f"#/components/schemas/TwoLayerNetwork{suffix}",
    }
    fields = {
        "logistic_regression": LOGISTIC_FIELDS,
        "two_layer_network": NETWORK_FIELDS,
    }
    return (
        schema.get("discriminator") == {"propertyName": "type", "mapping": members}
        and schema.get("oneOf") == [{"$ref": ref} for ref in members.values()]
        and all(
            set(resolve({"$ref": ref})["properties"]) == fields[tag]
            and resolve({"$ref": ref})["properties"]["type"]["const"] == tag
            for tag, ref in members.items()
        )
    )


def test_every_schema_with_a_model_spec_has_the_discriminated_union():
    holders = {
        name
        for name, schema in SCHEMAS.items()
        if "model" in schema.get("properties", {}) and name != "JobLinks"  # a link, not a spec
    }
    assert holders == {
        "JobCreate",
        "JobPublic",
        "ModelPublic",
        "SweepCreate",
        "SweepPublic",
        "SweepSummary",
    }
    for name in holders:
        suffix = "In" if name.endswith("Create") else "Public"
        assert is_model_spec_union(SCHEMAS[name]["properties"]["model"], suffix), name


SEARCH = {"strategy": "grid", "space": {"l2": [0.0, 0.1]}}


def body_for(route: str, dataset_id: str, model: dict[str, Any]) -> dict[str, Any]:
    """A request to ``route`` that is valid but for ``model``."""
    bodies = {
        "POST /v1/jobs": {"dataset_id": dataset_id, "model": model},
        "POST /v1/sweeps": {"dataset_id": dataset_id, "model": model, "search": SEARCH},
    }
    assert route in bodies, f"{route} takes a model spec: give it a body here"
    return bodies[route]


def post(client, route: str, body: dict[str, Any]):
    method, path = route.split(" ")
    return client.request(method, path, json=body)


def field_problem(field: str, message: str) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": f"{field}: {message}",
        "errors": [{"field": field, "message": message}],
    }


@pytest.mark.parametrize(("name", "value"), [("hidden_units", 5), ("activation", "relu")])
@pytest.mark.parametrize("route", MODEL_SPEC_ROUTES)
def test_a_logistic_regression_with_a_hidden_layer_field_is_422_naming_it(
    client, database, route, name, value
):
    model = {"type": "logistic_regression", name: value}
    response = post(client, route, body_for(route, add_dataset(database), model))
    assert assert_problem(response, 422) == field_problem(
        f"model.{name}", "Extra inputs are not permitted"
    )


@pytest.mark.parametrize("route", MODEL_SPEC_ROUTES)
def test_a_model_spec_without_a_type_is_422_naming_model_type(client, database, route):
    response = post(client, route, body_for(route, add_dataset(database), {"init": "he"}))
    assert assert_problem(response, 422) == field_problem("model.type", "Field required")


@pytest.mark.parametrize("route", MODEL_SPEC_ROUTES)
def test_a_model_spec_of_an_unknown_type_is_422_naming_model_type(client, database, route):
    response = post(client, route, body_for(route, add_dataset(database), {"type": "svm"}))
    problem = assert_problem(response, 422)
    assert [error["field"] for error in problem["errors"]] == ["model.type"]
    assert "'logistic_regression', 'two_layer_network'" in problem["detail"]


def model_specs(value: Any) -> list[dict[str, Any]]:
    """Every model spec in a response body: each object holding a `type` of a model."""
    if isinstance(value, list):
        return [spec for item in value for spec in model_specs(item)]
    if not isinstance(value, dict):
        return []
    found = [value] if value.get("type") in engine.MODEL_TYPES and "init" in value else []
    return found + [spec for item in value.values() for spec in model_specs(item)]


def test_stored_logistic_specs_show_only_their_own_fields_everywhere(
    client, database, rows_of_every_kind
):
    """Rows stored before the union hold hidden_units 32 and activation tanh: never shown."""
    job_id = add_job(database, rows_of_every_kind["dataset"])
    paths = [
        "/v1/jobs",
        f"/v1/jobs/{job_id}",
        "/v1/models",
        f"/v1/models/{rows_of_every_kind['model']}",
        "/v1/sweeps",
        f"/v1/sweeps/{rows_of_every_kind['sweep']}",
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        specs = model_specs(response.json())
        assert specs, path
        assert all(set(spec) == LOGISTIC_FIELDS for spec in specs), (path, specs)


# Ranges.

# Each engine table, the component that states it, and the JSON Schema type of its values.
RANGED = (
    [
        ("TrainingSpecIn", name, bounds)
        for name, bounds in TRAINING_BOUNDS.items()
        if name not in ("epochs",)  # epochs: also at most BACKPROP_MAX_EPOCHS (below)
    ]
    + [("EarlyStoppingIn", name, bounds) for name, bounds in STOPPING_BOUNDS.items()]
    + [
        ("TwoLayerNetworkIn", name, bounds)
        for name, bounds in MODEL_BOUNDS.items()
        if name != "hidden_units"  # also at most BACKPROP_MAX_HIDDEN_UNITS (below)
    ]
    + [
        ("LogisticRegressionIn", name, bounds)
        for name, bounds in MODEL_BOUNDS.items()
        if name not in HIDDEN_LAYER_FIELDS
    ]
)


def value_schema(component: str, name: str) -> dict[str, Any]:
    """The schema of a field's values (of its non-null branch when it may be null)."""
    schema = SCHEMAS[component]["properties"][name]
    branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
    assert len(branches) == 1
    return branches[0]


def expected_keywords(bounds: Bounds) -> dict[str, Any]:
    keywords: dict[str, Any] = {"type": "integer" if bounds.integer else "number"}
    if bounds.low is not None:
        keywords["exclusiveMinimum" if bounds.low_open else "minimum"] = bounds.low
    if bounds.high is not None:
        keywords["exclusiveMaximum" if bounds.high_open else "maximum"] = bounds.high
    return keywords


@pytest.mark.parametrize(
    ("component", "name", "bounds"), RANGED, ids=[f"{c}.{n}" for c, n, _ in RANGED]
)
def test_the_document_states_every_range_the_engine_checks(component, name, bounds):
    schema = value_schema(component, name)
    stated = {k: schema[k] for k in expected_keywords(bounds) if k in schema}
    assert stated == expected_keywords(bounds)


def test_limits_set_at_run_time_are_stated_too():
    settings = Settings(database_url="sqlite://", max_epochs=77, max_hidden_units=9)
    document = create_app(settings).openapi()
    schemas = document["components"]["schemas"]
    assert schemas["TrainingSpecIn"]["properties"]["epochs"]["maximum"] == 77
    assert schemas["TwoLayerNetworkIn"]["properties"]["hidden_units"]["maximum"] == 9
    assert (
        schemas["GridSearchIn"]["properties"]["space"]["properties"]["hidden_units"]["items"][
            "maximum"
        ]
        == 9
    )


def test_a_limit_below_the_engines_default_makes_the_field_one_a_request_must_give():
    """max_epochs 200 < the default 500: a job without `training.epochs` would be refused."""
    settings = Settings(database_url="sqlite://", max_epochs=200, max_hidden_units=16)
    schemas = create_app(settings).openapi()["components"]["schemas"]
    assert "epochs" in schemas["TrainingSpecIn"]["required"]
    assert "default" not in schemas["TrainingSpecIn"]["properties"]["epochs"]
    assert "training" in schemas["JobCreate"]["required"]
    assert "training" in schemas["SweepCreate"]["required"]
    assert "hidden_units" in schemas["TwoLayerNetworkIn"]["required"]
    assert "epochs" not in SCHEMAS["TrainingSpecIn"].get("required", [])  # the defaults fit


def outside_and_at(bounds: Bounds) -> tuple[float | None, float | None]:
    """A value just outside the low end, and the low end itself when it is allowed."""
    if bounds.low is None:
        return None, None
    step = 1 if bounds.integer else 1e-9
    return (bounds.low if bounds.low_open else bounds.low - step), (
        None if bounds.low_open else bounds.low
    )


def job_body(component: str, name: str, value: Any, dataset_id: str) -> dict[str, Any]:
    """POST /v1/jobs with field ``name`` of ``component`` set to ``value``."""
    body: dict[str, Any] = {"dataset_id": dataset_id}
    if component == "TrainingSpecIn":
        body["training"] = {name: value}
    elif component == "EarlyStoppingIn":
        body["training"] = {"early_stopping": {name: value}}
    else:
        model_type = "two_layer_network" if component == "TwoLayerNetworkIn" else None
        body["model"] = {"type": model_type or "logistic_regression", name: value}
    return body


def field_of(component: str, name: str) -> str:
    prefix = {
        "TrainingSpecIn": "training.",
        "EarlyStoppingIn": "training.early_stopping.",
    }.get(component, "model.")
    return prefix + name


def documented_errors(body: dict[str, Any]) -> list[str]:
    rooted = {"components": DOCUMENT["components"], "$ref": "#/components/schemas/JobCreate"}
    return [error.message for error in Draft202012Validator(rooted).iter_errors(body)]


@pytest.mark.parametrize(
    ("component", "name", "bounds"), RANGED, ids=[f"{c}.{n}" for c, n, _ in RANGED]
)
def test_the_document_and_the_service_draw_each_range_at_the_same_place(
    client, database, component, name, bounds
):
    outside, at = outside_and_at(bounds)
    dataset_id = add_dataset(database)
    refused = job_body(component, name, outside, dataset_id)
    assert documented_errors(refused), refused
    problem = assert_problem(client.post("/v1/jobs", json=refused), 422)
    assert [error["field"] for error in problem["errors"]] == [field_of(component, name)]
    if at is not None and name != "seed":  # seed 0 is the default, as good as any
        accepted = job_body(component, name, at, dataset_id)
        assert documented_errors(accepted) == []
        assert client.post("/v1/jobs", json=accepted).status_code == 202, accepted


# Rules between fields, stated with if/then and oneOf: the document and the service agree.

NETWORK = {"type": "two_layer_network"}


def grid_of(dimension: str, values: list[Any]) -> dict[str, Any]:
    return {"strategy": "grid", "space": {dimension: values}}


GRID_L2 = {"strategy": "grid", "space": {"l2": [0.0]}}
CROSS_FIELD_CASES = [
    # (route, body without dataset_id, accepted)
    ("POST /v1/jobs", {"training": {"optimizer": "lbfgs", "batch_size": 8}}, False),
    ("POST /v1/jobs", {"training": {"optimizer": "lbfgs", "batch_size": None}}, True),
    ("POST /v1/sweeps", {"search": {"strategy": "grid", "space": {"hidden_units": [2]}}}, False),
    (
        "POST /v1/sweeps",
        {"model": NETWORK, "search": {"strategy": "grid", "space": {"hidden_units": [2]}}},
        True,
    ),
    (
        "POST /v1/sweeps",
        {
            "training": {"batch_size": 8},
            "search": {"strategy": "grid", "space": {"optimizer": ["lbfgs"]}},
        },
        False,
    ),
    (
        "POST /v1/sweeps",
        {
            "training": {"batch_size": 8},
            "search": {"strategy": "grid", "space": {"optimizer": ["gd"]}},
        },
        True,
    ),
    ("POST /v1/sweeps", {"search": {**GRID_L2, "n_trials": 2}}, False),
    ("POST /v1/sweeps", {"search": {**GRID_L2, "strategy": "random"}}, False),
    ("POST /v1/sweeps", {"search": {**GRID_L2, "strategy": "random", "n_trials": 2}}, True),
    (
        "POST /v1/sweeps",
        {
            "search": {
                "strategy": "random",
                "space": {"l2": {"low": 0.0, "high": 0.1, "log": True}},
                "n_trials": 2,
            }
        },
        False,
    ),
    ("POST /v1/sweeps", {"search": {"strategy": "grid", "space": {"l2": [0.1, 0.1]}}}, False),
]


def request_errors(route: str, body: dict[str, Any]) -> list[str]:
    method, path = route.split(" ")
    operation = DOCUMENT["paths"][path][method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    rooted = {"components": DOCUMENT["components"], **schema}
    return [error.message for error in Draft202012Validator(rooted).iter_errors(body)]


@pytest.mark.parametrize(("route", "body", "accepted"), CROSS_FIELD_CASES)
def test_the_document_and_the_service_agree_on_rules_between_fields(
    client, database, route, body, accepted
):
    body = {"dataset_id": add_dataset(database), **body}
    assert (request_errors(route, body) == []) is accepted
    status = post(client, route, body).status_code
    assert status == (202 if accepted else 422), body


@pytest.mark.parametrize(
    ("route", "body", "accepted"),
    [
        ("POST /v1/jobs", {"training": {"epochs": 10.0, "seed": 3.0}}, True),
        ("POST /v1/jobs", {"training": {"epochs": 10.5}}, False),
        ("POST /v1/jobs", {"training": {"epochs": "10"}}, False),
        ("POST /v1/jobs", {"training": {"epochs": True}}, False),
        ("POST /v1/sweeps", {"search": {**GRID_L2, "strategy": "random", "n_trials": 2.0}}, True),
    ],
)
def test_an_integer_is_what_json_schema_calls_one(client, database, route, body, accepted):
    """`type: integer` holds 10 and 10.0 (one JSON number), not 10.5, "10" or true."""
    body = {"dataset_id": add_dataset(database), **body}
    assert (request_errors(route, body) == []) is accepted
    response = post(client, route, body)
    assert response.status_code == (202 if accepted else 422), response.text
    if accepted and route == "POST /v1/jobs":
        assert response.json()["training"]["epochs"] == 10


# Ids.


def test_every_id_in_a_path_is_documented_with_the_pattern_ids_have():
    assert re.fullmatch(ID_PATTERN, new_id())
    path_ids = [
        (f"{method} {path}", p["name"], p["schema"])
        for method, path, operation in operations()
        for p in operation.get("parameters", [])
        if p["in"] == "path"
    ]
    assert len(path_ids) >= 10
    # The registry's paths name things by name (a registered model, an alias) and number
    # (a version): each with its own documented rule.
    # A key's id is the first 12 hex digits of its SHA-256 (service.core.api_keys).
    names = {"name": NAME_PATTERN, "alias": NAME_PATTERN, "key_id": KEY_ID_PATTERN}
    ids = [(where, name, schema) for where, name, schema in path_ids if name not in names]
    assert [(where, name) for where, name, schema in ids if name == "version"] == [
        ("GET /v1/registered-models/{name}/versions/{version}", "version")
    ]
    ids = [(where, name, schema) for where, name, schema in ids if name != "version"]
    assert [(where, name) for where, name, schema in ids if not name.endswith("_id")] == []
    assert [
        (where, name) for where, name, schema in ids if schema.get("pattern") != ID_PATTERN
    ] == []
    assert [
        (where, name)
        for where, name, schema in path_ids
        if name in names and schema.get("pattern") != names[name]
    ] == []
