"""The authorization matrix's decisions: what to send for each path parameter and operation.

Read by tests/service/test_authz_matrix.py, which walks the live OpenAPI document: a
path parameter, a body or a DELETE's throwaway row missing here fails it, so a new route
cannot ship without a decision. Values come from the two projects of
tests/service/two_projects.py (A's own ids; B's for "another project's ids").
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from service.core.public import PUBLIC_PATHS
from service.core.roles import Role
from tests.service.two_projects import CSV, CSV_HEADERS, World


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
