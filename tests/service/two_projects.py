"""Two projects on one live service, each with keys of every role and one row of every kind.

The set-up of the authorization matrix (tests/service/test_authz_matrix.py): a real
uvicorn and a real worker on a fresh database, keys made in that database with
service.core.api_keys.create_key (before the API starts, so no cache is involved), and
rows made through the API with each project's own keys, the way a team would.

Projects "alpha" (A) and "beta" (B) get the same rows, named alike: a dataset (the SAME
CSV in both: dedup must not cross projects), a succeeded job and its model, a sweep, a
registered model "churn" (both: names are per project) and one named after the project
only, aliases, a batch prediction, an evaluation; and throwaway rows that the matrix's
DELETEs may consume without changing what the other cases see.
"""

import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from service.core.api_keys import create_key, revoke_key
from service.core.roles import Role
from tests.service import live

A, B = "alpha", "beta"
ROLES = (Role.admin, Role.trainer, Role.reader)
CSV = "x0,x1,y\n" + "".join(f"{i % 7 - 3},{(i * 5) % 11 / 4},{i % 2}\n" for i in range(40))
SPARE_CSV = CSV.replace("x1,y\n", "x1,label\n", 1)  # another file: not a replay of CSV
CSV_HEADERS = {"Content-Type": "text/csv"}
TRAINING = {"training": {"epochs": 3}}


@dataclass
class Project:
    """One project's keys (by role) and its rows' ids (by path parameter name)."""

    name: str
    keys: dict[Role, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    key_ids: dict[Role, str] = field(default_factory=dict)
    uploads: list[httpx.Response] = field(default_factory=list)

    def headers(self, role: Role = Role.admin) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@dataclass
class World:
    base_url: str
    projects: dict[str, Project]
    revoked_key: str
    shared: httpx.Client = field(init=False)  # no key of its own: each request brings one

    def __post_init__(self) -> None:
        self.shared = httpx.Client(base_url=self.base_url, timeout=30)

    def client(self, project: str | None = None, role: Role = Role.admin) -> httpx.Client:
        headers = self.projects[project].headers(role) if project else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


def make_keys(database_url: str) -> tuple[dict[str, Project], str]:
    """Every project's keys, a spare key each (DELETE /v1/keys/{key_id} consumes A's), and
    a revoked key of A."""
    engine = create_engine(database_url)
    projects = {name: Project(name) for name in (A, B)}
    with Session(engine) as session, session.begin():
        for project in projects.values():
            for role in ROLES:
                project.keys[role], row = create_key(session, project=project.name, role=role)
                project.key_ids[role] = row.key_id
            _, spare = create_key(session, project=project.name, role=Role.reader, name="spare")
            project.ids["key_id"] = spare.key_id
        revoked, row = create_key(session, project=A, role=Role.admin, name="revoked")
        revoke_key(session, row.key_id)
    engine.dispose()
    return projects, revoked


def wait_for(client: httpx.Client, path: str, done: tuple[str, ...], timeout: float = 60) -> dict:
    """The row at ``path`` once its status is one of ``done`` (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = client.get(path).json()
        if row.get("status") in done:
            return row
        time.sleep(0.1)
    raise TimeoutError(f"{path} still not {done} after {timeout} s")


def expect(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, f"{response.request.url}: {response.text}"
    return response.json() if response.content else {}


def fill(client: httpx.Client, project: Project) -> None:
    """Make the project's rows through the API (as its admin)."""
    ids, p = project.ids, project.name[0]  # "a" / "b": names and aliases only one project has
    for csv, name in ((CSV, "dataset_id"), (SPARE_CSV, "spare_dataset_id")):
        upload = client.post("/v1/datasets", content=csv, headers=CSV_HEADERS)
        project.uploads.append(upload)
        ids[name] = expect(upload, 201)["id"]
    train = {"dataset_id": ids["dataset_id"], **TRAINING}
    # Each job's name, and its model's: the spare job's own model goes with it when deleted.
    jobs = {"job_id": "model_id", "spare_job_id": None, "spare_model_job_id": "spare_model_id"}
    sweep = {"strategy": "grid", "space": {"l2": [0.0, 0.1]}}
    body = {"dataset_id": ids["dataset_id"], "training": {"epochs": 2}, "search": sweep}
    ids["sweep_id"] = expect(client.post("/v1/sweeps", json=body), 202)["id"]
    for name in jobs:
        ids[name] = expect(client.post("/v1/jobs", json=train), 202)["id"]
    for name, model in jobs.items():
        ended = wait_for(client, f"/v1/jobs/{ids[name]}", ("succeeded", "failed", "cancelled"))
        assert ended["status"] == "succeeded", ended
        if model:
            ids[model] = ended["model_id"]
    # The registry: "churn" in both projects; f"{p}-only" in this one only.
    ids.update(name=f"{p}-only", alias=f"{p}-live", version="1", spare_alias=f"{p}-spare")
    for name in ("churn", ids["name"]):
        expect(client.post("/v1/registered-models", json={"name": name}), 201)
        versions = f"/v1/registered-models/{name}/versions"
        expect(client.post(versions, json={"model_id": ids["model_id"]}), 201)
        for alias in (ids["alias"], ids["spare_alias"]):
            path = f"/v1/registered-models/{name}/aliases/{alias}"
            expect(client.put(path, json={"version": 1}), 200)
    scoring = f"/v1/models/{ids['model_id']}"
    data = {"dataset_id": ids["dataset_id"]}
    ids["batch_id"] = expect(client.post(f"{scoring}/batch-predictions", json=data), 202)["id"]
    ids["evaluation_id"] = expect(client.post(f"{scoring}/evaluations", json=data), 202)["id"]
    finished = ("succeeded", "failed")
    batch = wait_for(client, f"{scoring}/batch-predictions/{ids['batch_id']}", finished)
    evaluation = wait_for(client, f"{scoring}/evaluations/{ids['evaluation_id']}", finished)
    assert batch["status"] == evaluation["status"] == "succeeded", (batch, evaluation)


def unknown_like(value: str) -> str:
    """A value of the same shape as ``value`` that names nothing."""
    if re.fullmatch(r"[0-9a-f]+", value):
        return secrets.token_hex(len(value))[: len(value)]
    return ("u" + secrets.token_hex(len(value)))[: len(value)]


def same_answer(
    theirs: httpx.Response, unknown: httpx.Response, swaps: dict[str, str]
) -> str | None:
    """What differs between another project's answer and an unknown id's (None: nothing),
    with another project's values swapped for the unknown ones."""
    if theirs.status_code != unknown.status_code:
        return f"status {theirs.status_code} vs {unknown.status_code}"
    kinds = [r.headers.get("content-type") for r in (theirs, unknown)]
    if kinds[0] != kinds[1]:
        return f"media type {kinds[0]} vs {kinds[1]}"
    text = theirs.text
    for value, replacement in swaps.items():
        text = text.replace(value, replacement)
    if json.loads(text or "null") != json.loads(unknown.text or "null"):
        return f"body {theirs.text} vs {unknown.text}"
    return None


@contextmanager
def two_projects(backend: str, folder: Path) -> Iterator[World]:
    """A live API and worker on a fresh database holding projects A and B, filled."""
    with live.fresh_database(backend, folder, "backprop_matrix") as database_url:
        projects, revoked = make_keys(database_url)
        env = live.service_env(
            database_url, **live.LIVE_TIMINGS, log_level="warning", inline_evaluation_rows=10
        )
        port = live.free_port()
        processes = [live.start_api(env, port), live.start_worker(env)]
        try:
            world = World(f"http://127.0.0.1:{port}", projects, revoked)
            live.wait_until_ready(world.base_url)
            for project in projects.values():
                with world.client(project.name) as client:
                    fill(client, project)
            yield world
            world.shared.close()
        finally:
            for process in processes:
                live.stop(process)
