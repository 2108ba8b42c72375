"""The authorization matrix, generated from the live service's OpenAPI document.

Every operation the document lists, against a real uvicorn and worker (SQLite and
PostgreSQL), is called as: its own project (A's admin), with another project's ids (A's
admin, B's ids), with no key, with a revoked key, and with a reader's key. Expected:

- no key, revoked key: 401;
- reader: 403 when the operation's ``x-required-role`` is above reader, else as own;
- own project: neither 401, 403 nor 404, nor a 5xx, and a status the document lists;
- another project's ids: 404, and the same answer (status, media type, body with the id
  replaced) as a random unknown id of the same shape: a row's existence does not leak.

The tables below decide, per path parameter and per operation, what to send. A path
parameter without an entry, an operation with a body but no body here, a DELETE without a
throwaway row, or an operation without ``x-required-role`` fails the test: a new route
cannot ship without a decision. Rows come from tests/service/two_projects.py.
"""

import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.core.public import PUBLIC_PATHS
from service.core.roles import ROUTE_ROLES, Role
from tests.conftest import BACKENDS
from tests.service.two_projects import (
    CSV,
    CSV_HEADERS,
    A,
    B,
    World,
    same_answer,
    two_projects,
    unknown_like,
)

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Parameter:
    """How the matrix fills one path parameter.

    ``identifier``: a value only one project's row has, so another project's value is a
    leak test on its own (a registered model's version number is not: both projects have
    a version 1). ``throwaway``: the own row a DELETE of this parameter may consume.
    """

    identifier: bool = True
    throwaway: str | None = None


# Every path parameter of the document needs an entry ("no decision for {param}").
PARAMETERS: dict[str, Parameter] = {
    "dataset_id": Parameter(throwaway="spare_dataset_id"),
    "job_id": Parameter(throwaway="spare_job_id"),
    "model_id": Parameter(throwaway="spare_model_id"),
    "sweep_id": Parameter(),
    "batch_id": Parameter(),
    "evaluation_id": Parameter(),
    "name": Parameter(),  # A's own is "churn", which B has too; B's is "b-only"
    "alias": Parameter(throwaway="spare_alias"),
    "version": Parameter(identifier=False),
    "key_id": Parameter(throwaway="key_id"),  # each project's spare key
}
OWN_NAME = "churn"  # A's registered model in own cases: B has one of the same name

Ids = dict[str, str]
# A minimal, valid request body per operation that takes one (from A's ids): JSON, or
# (content, headers).
BODIES: dict[str, Callable[[Ids], Any]] = {
    "POST /v1/datasets": lambda ids: (CSV, CSV_HEADERS),
    "POST /v1/jobs": lambda ids: {"dataset_id": ids["dataset_id"], "training": {"epochs": 1}},
    "POST /v1/sweeps": lambda ids: {
        "dataset_id": ids["dataset_id"],
        "training": {"epochs": 1},
        "search": {"strategy": "grid", "space": {"l2": [0.0]}},
    },
    "POST /v1/models/{model_id}/predictions": lambda ids: {"rows": [[0.5, 1.0]]},
    "POST /v1/models/{model_id}/batch-predictions": lambda ids: {"dataset_id": ids["dataset_id"]},
    "POST /v1/models/{model_id}/evaluations": lambda ids: {"dataset_id": ids["dataset_id"]},
    "POST /v1/registered-models": lambda ids: {"name": "matrix-made"},
    "POST /v1/registered-models/{name}/versions": lambda ids: {"model_id": ids["model_id"]},
    "PUT /v1/registered-models/{name}/aliases/{alias}": lambda ids: {"version": 1},
    "POST /v1/registered-models/{name}/aliases/{alias}/predictions": lambda ids: {
        "rows": [[0.5, 1.0]]
    },
    # Routes of other branches (keys, quotas): decided here so the matrix covers them once merged.
    "POST /v1/keys": lambda ids: {"role": "reader", "name": "matrix-made"},
    "PUT /v1/project/quotas": lambda ids: {
        "max_stored_bytes": None,
        "max_queued_jobs": None,
        "max_running_jobs": None,
    },
}
QUERIES: dict[str, dict[str, str]] = {"GET /v1/models/{model_id}/export": {"format": "onnx"}}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    role: Role
    parameters: tuple[str, ...]
    takes_body: bool
    documented: frozenset[str]

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def operations(document: dict[str, Any]) -> tuple[list[Operation], list[str]]:
    """The document's operations, and the decisions missing for some of them."""
    found, missing = [], []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            if not isinstance(spec, dict) or path in PUBLIC_PATHS:
                continue
            name = f"{method.upper()} {path}"
            params = tuple(re.findall(r"\{([^}]+)\}", path))
            missing += [f"{name}: no decision for {p}" for p in params if p not in PARAMETERS]
            if "x-required-role" not in spec:
                missing.append(f"{name}: no x-required-role")
                continue
            if "requestBody" in spec and name not in BODIES:
                missing.append(f"{name}: no body in BODIES")
            required = [q["name"] for q in spec.get("parameters", []) if q["in"] == "query"]
            required = [q for q in required if q not in QUERIES.get(name, {})]
            if any(q["required"] for q in spec.get("parameters", []) if q["name"] in required):
                missing.append(f"{name}: no value for a required query parameter")
            if method == "delete" and not any(
                PARAMETERS.get(p, Parameter()).throwaway for p in params
            ):
                missing.append(f"{name}: no throwaway row for a DELETE")
            role = Role[spec["x-required-role"]]
            found.append(
                Operation(
                    method.upper(),
                    path,
                    role,
                    params,
                    "requestBody" in spec,
                    frozenset(spec["responses"]),
                )
            )
    return found, missing


def own_values(op: Operation, ids: Ids) -> Ids:
    values = {p: ids[p] for p in op.parameters}
    if "name" in values:
        values["name"] = OWN_NAME
    if op.method == "DELETE":  # a throwaway row: the matrix's order does not matter
        for p in op.parameters:
            if (throwaway := PARAMETERS[p].throwaway) is not None:
                values[p] = ids[throwaway]
    return values


def call(
    world: World, op: Operation, values: Ids, headers: dict[str, str], ids: Ids
) -> httpx.Response:
    """One request; an event stream that answers 2xx is not read (it streams until its job ends)."""
    path = op.path.format(**values)
    body = BODIES[op.name](ids) if op.takes_body else None
    kwargs: dict[str, Any] = {"params": QUERIES.get(op.name), "headers": dict(headers)}
    if isinstance(body, tuple):
        kwargs["content"], extra = body
        kwargs["headers"].update(extra)
    elif body is not None:
        kwargs["json"] = body
    with world.shared.stream(op.method, path, **kwargs) as response:
        if response.status_code >= 300 or "event-stream" not in response.headers.get(
            "content-type", ""
        ):
            response.read()
        return response


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory) -> Iterator[World]:
    with two_projects(request.param, tmp_path_factory.mktemp("matrix")) as made:
        yield made


@pytest.fixture(scope="module")
def document(world) -> dict[str, Any]:
    return httpx.get(f"{world.base_url}/openapi.json").json()


def test_every_operation_has_a_decision(document):
    found, missing = operations(document)
    assert not missing, "\n".join(missing)
    assert len(found) >= 37  # this branch's routes, the probes left out: at least these
    # The document says what service.core.roles decides, operation by operation.
    assert {op.name: op.role for op in found} == {
        op.name: ROUTE_ROLES[op.name] for op in found if op.name in ROUTE_ROLES
    }


def theirs_cases(op: Operation, own: Ids, other: Ids) -> Iterator[Ids]:
    """Another project's values: all of them; and, on a path with several, each identifier
    alone among A's own (B's alias under A's "churn", which B has too). A PUT's last
    parameter names what it puts, so it is not looked up: B's alias put under A's "churn"
    would be A's new alias, not a leak."""
    if not op.parameters:
        return
    yield {p: other[p] for p in op.parameters}
    looked_up = op.parameters[:-1] if op.method == "PUT" else op.parameters
    if len(op.parameters) > 1:
        for p in looked_up:
            if PARAMETERS[p].identifier:
                yield {**own_values(op, own), p: other[p]}


def test_the_matrix(world, document):
    found, _ = operations(document)
    a, b = world.projects[A], world.projects[B]
    admin, reader = a.headers(Role.admin), a.headers(Role.reader)
    revoked = {"Authorization": f"Bearer {world.revoked_key}"}
    wrong: list[str] = []
    for op in found:
        own = own_values(op, a.ids)
        for who, headers in (("no key", {}), ("revoked key", revoked)):
            if (status := call(world, op, own, headers, a.ids).status_code) != 401:
                wrong.append(f"{op.name} with {who}: {status}, not 401")
        answer = call(world, op, own, reader, a.ids)
        if op.role > Role.reader and answer.status_code != 403:
            wrong.append(f"{op.name} with a reader's key: {answer.status_code}, not 403")
        elif op.role == Role.reader and answer.status_code in (401, 403, 404):
            wrong.append(f"{op.name} with a reader's key: {answer.status_code} {answer.text[:200]}")
        answer = call(world, op, own, admin, a.ids)
        status = answer.status_code
        if status in (401, 403, 404) or status >= 500 or str(status) not in op.documented:
            wrong.append(f"{op.name} own project: {status} {answer.text[:300]}")
        for values in theirs_cases(op, a.ids, b.ids):
            swaps = {
                v: unknown_like(v)
                for p, v in values.items()
                if PARAMETERS[p].identifier and v != own.get(p)
            }
            unknown = {p: swaps.get(v, v) for p, v in values.items()}
            theirs = call(world, op, values, admin, a.ids)
            if theirs.status_code != 404:
                wrong.append(
                    f"{op.name} with B's {values}: {theirs.status_code} {theirs.text[:300]}"
                )
            elif differs := same_answer(theirs, call(world, op, unknown, admin, a.ids), swaps):
                wrong.append(f"{op.name} with B's {values} vs unknown: {differs}")
    assert not wrong, "\n".join(wrong)


def b_only_values(world: World) -> set[str]:
    """What only B has: its row ids, key ids, and the registry names and aliases of its own."""
    b = world.projects[B]
    return {v for k, v in b.ids.items() if k != "version"} | {
        key_id for key_id in b.key_ids.values()
    }


def test_lists_never_show_another_projects_rows(world, document):
    """Every listing of the document (GET without a path parameter), paged to its end with
    A's admin key, names none of B's ids; and does name A's (the check is not vacuous)."""
    a = world.projects[A]
    theirs = b_only_values(world)
    listed: dict[str, str] = {}
    with world.client(A) as client:
        for path, methods in document["paths"].items():
            if "get" not in methods or "{" in path or path in PUBLIC_PATHS or path == "/metrics":
                continue  # /metrics: the service's own figures, an admin's, across projects
            pages, cursor = [], None
            for _ in range(50):  # bounded: a few rows each
                page = client.get(path, params={"cursor": cursor} if cursor else None)
                assert page.status_code == 200, (path, page.text)
                pages.append(page.text)
                cursor = page.json().get("next_cursor") if page.json() is not None else None
                if not cursor:
                    break
            listed[path] = "".join(pages)
    leaks = {path: sorted(v for v in theirs if v in text) for path, text in listed.items()}
    assert not any(leaks.values()), leaks
    for path, own in (
        ("/v1/datasets", "dataset_id"),
        ("/v1/jobs", "job_id"),
        ("/v1/models", "model_id"),
        ("/v1/sweeps", "sweep_id"),
        ("/v1/registered-models", "name"),
    ):
        assert a.ids[own] in listed[path], path


def test_dedup_of_uploads_never_crosses_projects(world):
    """The same CSV, uploaded by A then by B: two datasets, B's a 201 of its own; each
    project's second upload replays its own dataset (200)."""
    a, b = world.projects[A], world.projects[B]
    assert [a.uploads[0].status_code, b.uploads[0].status_code] == [201, 201]
    assert a.ids["dataset_id"] != b.ids["dataset_id"]
    for project in (a, b):
        with world.client(project.name, Role.trainer) as client:
            again = client.post("/v1/datasets", content=CSV, headers=CSV_HEADERS)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == project.ids["dataset_id"]


def test_registered_model_names_are_per_project(world):
    """A and B both registered "churn": each sees its own, pointing at its own model."""
    for project in world.projects.values():
        with world.client(project.name, Role.reader) as client:
            version = client.get(f"/v1/registered-models/{OWN_NAME}/versions/1")
            assert version.status_code == 200, version.text
            assert version.json()["model_id"] == project.ids["model_id"]
            alias = client.get(f"/v1/registered-models/{OWN_NAME}/aliases/{project.ids['alias']}")
            assert alias.json()["model_id"] == project.ids["model_id"]


# Reads that hand out data in forms other than JSON, or run a model: B's ids answer A as
# unknown ids do. (The matrix covers them too; here each in the form a client would use.)
SPECIAL_FORMS = [
    ("GET", "/v1/jobs/{job_id}/events", {"Accept": "text/event-stream"}),
    ("GET", "/v1/jobs/{job_id}/history", {"Accept": "text/csv"}),
    ("GET", "/v1/models/{model_id}/download", {}),
    ("GET", "/v1/models/{model_id}/export?format=onnx", {}),
    ("POST", "/v1/models/{model_id}/predictions", {}),
    ("POST", "/v1/registered-models/{name}/aliases/{alias}/predictions", {}),
    ("GET", "/v1/models/{model_id}/batch-predictions/{batch_id}/result", {"Accept": "text/csv"}),
    ("GET", "/v1/models/{model_id}/batch-predictions/{batch_id}/result?format=parquet", {}),
]


@pytest.mark.parametrize(("method", "template", "accept"), SPECIAL_FORMS)
def test_other_forms_answer_another_projects_ids_as_unknown(world, method, template, accept):
    b = world.projects[B]
    names = re.findall(r"\{([^}]+)\}", template)
    swaps = {b.ids[n]: unknown_like(b.ids[n]) for n in names}
    body = {"rows": [[0.5, 1.0]]} if method == "POST" else None
    answers = []
    with world.client(A) as client:
        for values in ({n: b.ids[n] for n in names}, {n: swaps[b.ids[n]] for n in names}):
            url = template.format(**values)
            with client.stream(method, url, headers=accept, json=body) as response:
                response.read()
                answers.append(response)
        own = client.request(method, template.format(**world.projects[A].ids), json=body)
    assert own.status_code == 200, own.text  # the same request with A's own ids is served
    assert answers[0].status_code == 404, answers[0].text
    assert same_answer(answers[0], answers[1], swaps) is None


TIMED = [
    "/v1/datasets/{dataset_id}",
    "/v1/jobs/{job_id}",
    "/v1/models/{model_id}",
    "/v1/sweeps/{sweep_id}",
    "/v1/registered-models/{name}",
]


def test_another_projects_ids_answer_in_the_time_of_unknown_ones(world):
    """A sanity check of the timing class, not a benchmark: per route, 20 requests for B's
    id and 20 for unknown ids, interleaved; the medians are within 3x of each other (a
    lookup that found B's row and then hid it would do more work: a read of the row, a
    serialization)."""
    b = world.projects[B]
    ratios = {}
    with world.client(A) as client:
        for template in TIMED:
            (name,) = re.findall(r"\{([^}]+)\}", template)
            times: dict[str, list[float]] = {"theirs": [], "unknown": []}
            for _ in range(20):
                for kind, value in (
                    ("theirs", b.ids[name]),
                    ("unknown", unknown_like(b.ids[name])),
                ):
                    started = time.perf_counter()
                    assert client.get(template.format(**{name: value})).status_code == 404
                    times[kind].append(time.perf_counter() - started)
            medians = [statistics.median(times[k]) for k in ("theirs", "unknown")]
            ratios[template] = max(medians) / min(medians)
    assert all(ratio < 3 for ratio in ratios.values()), ratios
