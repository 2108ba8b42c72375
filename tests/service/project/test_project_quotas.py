"""GET /v1/project and PUT /v1/project/quotas, and each quota refused past its limit:
stored bytes (413, nothing stored), queued jobs (429 with Retry-After, nothing queued);
every refusal names the quota, the project, the usage and the limit. Both databases."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.app import create_app
from service.core.api_keys import create_key
from service.core.limits import QUEUE_RETRY_AFTER_SECONDS
from service.core.roles import Role
from service.core.states import CANCELLING, QUEUED, RUNNING, SUCCEEDED
from service.core.tables import Dataset, Job
from tests.service.factories import add_dataset, add_job, assert_problem

ADMIN = "admin-key-3b7e0c9d1f2a4e58"
READER = "reader-key-8c1d2e3f4a5b6c7d"
CSV = b"x0,x1,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"
OTHER_CSV = b"x0,x1,y\n1,2,0\n3,4,1\n5,6,0\n7,9,1\n"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(database) -> dict[str, str]:
    """Keys of project b (an admin and a trainer), made in the database as the CLI would."""
    with database.writes() as session, session.begin():
        b_admin, _ = create_key(session, project="b", role=Role.admin)
        b_trainer, _ = create_key(session, project="b", role=Role.trainer)
    return {"admin": ADMIN, "reader": READER, "b_admin": b_admin, "b_trainer": b_trainer}


@pytest.fixture
def client_with(settings, keys) -> Iterator:
    """client_with(**settings) -> a client of an app with those settings changed and keys."""
    clients: list[TestClient] = []

    def make(**update: object) -> TestClient:
        access = {"api_keys": ADMIN, "read_only_api_keys": READER}
        client = TestClient(create_app(settings.model_copy(update={**access, **update})))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def upload(client: TestClient, key: str, csv: bytes = CSV):
    headers = {"Content-Type": "text/csv", **bearer(key)}
    return client.post("/v1/datasets", content=csv, headers=headers)


def job_body(dataset_id: str) -> dict:
    return {"dataset_id": dataset_id, "model": {"type": "logistic_regression"}}


def count(database, table, **where: object) -> int:
    statement = select(func.count()).select_from(table)
    for name, value in where.items():
        statement = statement.where(getattr(table, name) == value)
    with database.reads() as session:
        return session.scalar(statement)


# -- the project's view ----------------------------------------------------------------------


def test_the_view_names_the_project_role_defaults_and_usage(client_with, database, keys):
    client = client_with(project_max_queued_jobs=50)
    stored = upload(client, keys["admin"]).json()
    dataset_id = add_dataset(database)  # the default project's: no request, no project set
    for status in (QUEUED, QUEUED, RUNNING, CANCELLING, SUCCEEDED):
        add_job(database, dataset_id, status=status)
    add_job(database, dataset_id, project="b")  # another project's: not counted
    with database.reads() as session:
        size = session.scalar(
            select(func.sum(Dataset.size_bytes)).where(Dataset.project == "default")
        )
    view = client.get("/v1/project", headers=bearer(keys["reader"]))
    assert view.status_code == 200, view.text
    assert view.json() == {
        "name": "default",
        "role": "reader",
        "quotas": {
            "max_stored_bytes": None,
            "max_queued_jobs": 50,
            "max_running_jobs": None,
            "from_defaults": ["max_stored_bytes", "max_queued_jobs", "max_running_jobs"],
        },
        "usage": {"stored_bytes": size, "queued_jobs": 2, "running_jobs": 2},
    }
    assert size == stored["size_bytes"] + 60 * 3 * 8  # the upload's and add_dataset's
    other = client.get("/v1/project", headers=bearer(keys["b_trainer"])).json()
    assert (other["name"], other["role"], other["usage"]["queued_jobs"]) == ("b", "trainer", 1)


def test_an_admin_sets_quotas_and_null_gives_the_default_back(client_with, keys):
    client = client_with(project_max_running_jobs=4)
    body = {"max_stored_bytes": 2**40, "max_queued_jobs": 0, "max_running_jobs": 1}
    answer = client.put("/v1/project/quotas", json=body, headers=bearer(keys["b_admin"]))
    assert answer.status_code == 200, answer.text
    assert answer.json()["quotas"] == {**body, "from_defaults": []}
    assert client.get("/v1/project", headers=bearer(keys["b_admin"])).json()["quotas"] == {
        **body,
        "from_defaults": [],
    }
    reset = client.put(
        "/v1/project/quotas", json={"max_queued_jobs": 7}, headers=bearer(keys["b_admin"])
    )
    assert reset.json()["quotas"] == {
        "max_stored_bytes": None,
        "max_queued_jobs": 7,
        "max_running_jobs": 4,
        "from_defaults": ["max_stored_bytes", "max_running_jobs"],
    }
    # Another project's quotas are untouched.
    default = client.get("/v1/project", headers=bearer(keys["admin"])).json()
    assert default["quotas"]["max_queued_jobs"] is None
    # Each change is in the project's audit log, as given (null: the default), newest first.
    events = client.get("/v1/audit-events", headers=bearer(keys["b_admin"])).json()["data"]
    changes = [e["detail"] for e in events if e["action"] == "project.quotas"]
    assert changes == [
        {"max_stored_bytes": None, "max_queued_jobs": 7, "max_running_jobs": None},
        body,
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_queued_jobs": -1}, "max_queued_jobs"),
        ({"max_running_jobs": 1.5}, "max_running_jobs"),
        ({"max_stored_bytes": True}, "max_stored_bytes"),
        ({"max_stored_bytes": "100"}, "max_stored_bytes"),
        ({"max_stored_bytes": 2**63}, "max_stored_bytes"),
        ({"max_running_jobs": 2**31}, "max_running_jobs"),
        ({"max_queud_jobs": 3}, "max_queud_jobs"),
    ],
)
def test_invalid_quotas_are_422_naming_the_field(client_with, keys, body, field):
    client = client_with()
    problem = assert_problem(
        client.put("/v1/project/quotas", json=body, headers=bearer(keys["admin"])), 422
    )
    assert problem["detail"].startswith(f"{field}: "), problem
    assert [error["field"] for error in problem["errors"]] == [field]


def test_readers_and_trainers_may_not_set_quotas(client_with, keys):
    client = client_with()
    for key in (keys["reader"], keys["b_trainer"]):
        answer = client.put("/v1/project/quotas", json={"max_queued_jobs": 1}, headers=bearer(key))
        assert_problem(answer, 403)
    assert (
        client.get("/v1/project", headers=bearer(keys["admin"])).json()["quotas"]["max_queued_jobs"]
        is None
    )


# -- stored bytes ----------------------------------------------------------------------------


def assert_stored_bytes_refused(response, *, project: str, usage: int, limit: int) -> dict:
    problem = assert_problem(response, 413)
    assert "Retry-After" not in response.headers  # waiting does not free bytes
    assert (problem["quota"], problem["project"], problem["usage"], problem["limit"]) == (
        "max_stored_bytes",
        project,
        usage,
        limit,
    )
    assert "max_stored_bytes" in problem["detail"]
    assert f"{limit:,}" in problem["detail"]
    return problem


def test_an_upload_past_the_stored_bytes_quota_is_413_and_stores_nothing(
    client_with, database, keys
):
    client = client_with()
    headers = bearer(keys["b_admin"])
    limit = len(CSV) + len(OTHER_CSV) - 1
    client.put("/v1/project/quotas", json={"max_stored_bytes": limit}, headers=headers)
    assert upload(client, keys["b_trainer"]).status_code == 201
    refused = upload(client, keys["b_trainer"], OTHER_CSV)
    problem = assert_stored_bytes_refused(refused, project="b", usage=len(CSV), limit=limit)
    assert problem["adding"] == len(OTHER_CSV)
    assert count(database, Dataset, project="b") == 1
    # The same bytes again store nothing: the earlier dataset is the answer.
    assert upload(client, keys["b_trainer"]).status_code == 200
    # Other projects are not limited by b's quota.
    assert upload(client, keys["admin"], OTHER_CSV).status_code == 201
    usage = client.get("/v1/project", headers=headers).json()["usage"]
    assert usage["stored_bytes"] == len(CSV)


def test_a_project_at_its_stored_bytes_quota_is_refused_before_its_upload_is_read(
    client_with, database, keys
):
    client = client_with(project_max_stored_bytes=len(CSV))  # the default, for every project
    assert upload(client, keys["b_trainer"]).status_code == 201
    refused = upload(client, keys["b_trainer"], OTHER_CSV * 1000)
    problem = assert_stored_bytes_refused(refused, project="b", usage=len(CSV), limit=len(CSV))
    assert "it is full" in problem["detail"]
    assert "BACKPROP_PROJECT_MAX_STORED_BYTES" in problem["detail"]
    assert problem["adding"] == 0  # refused before the body was read: its size is unknown
    assert count(database, Dataset, project="b") == 1


# -- queued jobs -----------------------------------------------------------------------------


def assert_queue_quota_refused(response, *, project: str, usage: int, limit: int) -> dict:
    problem = assert_problem(response, 429)
    assert response.headers["Retry-After"] == str(QUEUE_RETRY_AFTER_SECONDS)
    assert (problem["quota"], problem["project"], problem["usage"], problem["limit"]) == (
        "max_queued_jobs",
        project,
        usage,
        limit,
    )
    assert f"project {project!r} has {usage:,} queued jobs" in problem["detail"]
    return problem


def test_jobs_past_the_queued_jobs_quota_are_429_with_retry_after(client_with, database, keys):
    client = client_with()
    client.put("/v1/project/quotas", json={"max_queued_jobs": 2}, headers=bearer(keys["b_admin"]))
    dataset_id = upload(client, keys["b_trainer"]).json()["id"]
    # Two keys of one project share its quota.
    for key in ("b_trainer", "b_admin"):
        answer = client.post("/v1/jobs", json=job_body(dataset_id), headers=bearer(keys[key]))
        assert answer.status_code == 202, answer.text
    refused = client.post("/v1/jobs", json=job_body(dataset_id), headers=bearer(keys["b_trainer"]))
    assert_queue_quota_refused(refused, project="b", usage=2, limit=2)
    assert count(database, Job, project="b") == 2
    # Another project queues as before.
    own = upload(client, keys["admin"]).json()["id"]
    assert (
        client.post("/v1/jobs", json=job_body(own), headers=bearer(keys["admin"])).status_code
        == 202
    )


def test_a_sweep_needs_quota_room_for_every_trial(client_with, database, keys):
    client = client_with(project_max_queued_jobs=3)
    dataset_id = upload(client, keys["b_trainer"]).json()["id"]
    headers = bearer(keys["b_trainer"])
    assert client.post("/v1/jobs", json=job_body(dataset_id), headers=headers).status_code == 202
    sweep = {
        **job_body(dataset_id),
        "search": {"strategy": "grid", "space": {"learning_rate": [0.1, 0.2, 0.3]}},
    }
    refused = client.post("/v1/sweeps", json=sweep, headers=headers)
    problem = assert_queue_quota_refused(refused, project="b", usage=1, limit=3)
    assert "3 more (one per trial)" in problem["detail"]
    assert count(database, Job, project="b") == 1


def test_the_per_key_limit_still_applies_beside_the_quota(client_with, keys):
    client = client_with(project_max_queued_jobs=10, max_queued_jobs_per_key=1)
    dataset_id = upload(client, keys["b_trainer"]).json()["id"]
    headers = bearer(keys["b_trainer"])
    assert client.post("/v1/jobs", json=job_body(dataset_id), headers=headers).status_code == 202
    refused = assert_problem(
        client.post("/v1/jobs", json=job_body(dataset_id), headers=headers), 429
    )
    assert refused["setting"] == "max_queued_jobs_per_key"
