"""The authorization matrix, generated from the live service's OpenAPI document.

Every operation the document lists, against a real uvicorn and worker (SQLite and
PostgreSQL), is called as: its own project (A's admin), with another project's ids (A's
admin, B's ids), with no key, with a revoked key, and with a reader's key. Expected:

- no key, revoked key: 401;
- reader: 403 when the operation's ``x-required-role`` is above reader, else as own;
- own project: neither 401, 403 nor 404, nor a 5xx, and a status the document lists;
- another project's ids: 404, and the same answer (status, media type, body with the id
  replaced) as a random unknown id of the same shape: a row's existence does not leak.

The tables in tests/service/authz_tables.py decide, per path parameter and per operation,
what to send. A path parameter without an entry, an operation with a body but no body
there, a DELETE without a throwaway row, or an operation without ``x-required-role``
fails the test: a new route cannot ship without a decision. Rows come from
tests/service/two_projects.py. Then, on the same two projects: listings, dedup, registry
names, the other forms of reads (events, CSV, files), ids in bodies, and timing.
"""

import re
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.core.public import PUBLIC_PATHS
from service.core.roles import ROUTE_ROLES, Role
from tests.conftest import BACKENDS
from tests.service.authz_tables import (
    OWN_NAME,
    PARAMETERS,
    call,
    operations,
    own_values,
    theirs_cases,
)
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
                body = page.json()  # a page {"data", "next_cursor"}, or a plain list
                cursor = body.get("next_cursor") if isinstance(body, dict) else None
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


# Ids in a BODY: another project's answer as unknown ones do (422 naming the field).
BODY_IDS = [
    ("POST", "/v1/jobs", "dataset_id", lambda v, a: {"dataset_id": v}),
    (
        "POST",
        "/v1/jobs",
        "model_id",
        lambda v, a: {"dataset_id": a["dataset_id"], "warm_start": {"model_id": v}},
    ),
    (
        "POST",
        "/v1/sweeps",
        "dataset_id",
        lambda v, a: {"dataset_id": v, "search": {"strategy": "grid", "space": {"l2": [0.0]}}},
    ),
    ("POST", "/v1/models/{model_id}/predictions", "dataset_id", lambda v, a: {"dataset_id": v}),
    (
        "POST",
        "/v1/models/{model_id}/batch-predictions",
        "dataset_id",
        lambda v, a: {"dataset_id": v},
    ),
    ("POST", "/v1/models/{model_id}/evaluations", "dataset_id", lambda v, a: {"dataset_id": v}),
    ("POST", "/v1/registered-models/{name}/versions", "model_id", lambda v, a: {"model_id": v}),
]


@pytest.mark.parametrize(("method", "template", "field", "body"), BODY_IDS)
def test_another_projects_ids_in_a_body_answer_as_unknown(world, method, template, field, body):
    a, b = world.projects[A].ids, world.projects[B].ids
    path = template.format(**{**a, "name": OWN_NAME})
    swaps = {b[field]: unknown_like(b[field])}
    with world.client(A, Role.trainer) as client:
        theirs = client.request(method, path, json=body(b[field], a))
        unknown = client.request(method, path, json=body(swaps[b[field]], a))
    assert theirs.status_code == 422, theirs.text
    assert same_answer(theirs, unknown, swaps) is None
