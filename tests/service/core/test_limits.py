"""Limits: each refused request is a 413/422/429 problem naming the limit and its setting.

New here: the JSON body size (413 before parsing, with or without Content-Length),
the work budget (epochs x rows, 422, for a job and each trial of a sweep) and the
queued jobs per API key (429 with Retry-After; every key has its own budget, and
without keys every caller shares one). The limits that already existed are
checked for naming themselves too. Apps with small limits are built with
``create_app(settings.model_copy(update=...))``; every test runs on both databases.
"""

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine import ModelSpec
from service.app import create_app
from service.core.limits import QUEUE_RETRY_AFTER_SECONDS, TooManyRequests
from service.core.settings import Settings
from service.core.states import QUEUED, RUNNING
from service.core.tables import Job
from service.jobs import service as jobs
from service.jobs.schemas import JobCreate
from tests.service.factories import add_dataset, add_job, assert_problem, set_job
from tests.service.models.test_models import Data, fit, insert_dataset, insert_model

ROOT = Path(__file__).resolve().parents[3]
KEY_A = "key-a-5d0e8b1c7f2a4e39"
KEY_B = "key-b-93c6a0f4d2e1487b"
ROWS = 60  # add_dataset's default


def job_body(dataset_id: str, epochs: int = 10) -> dict:
    return {
        "dataset_id": dataset_id,
        "model": {"type": "logistic_regression"},
        "training": {"epochs": epochs},
    }


def sweep_body(dataset_id: str, rates: list[float], epochs: int = 10) -> dict:
    return {
        **job_body(dataset_id, epochs),
        "search": {"strategy": "grid", "space": {"learning_rate": rates}},
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def client_with(settings) -> Iterator:
    """client_with(**settings) -> a TestClient of an app with those settings changed."""
    clients: list[TestClient] = []

    def make(**update: object) -> TestClient:
        client = TestClient(create_app(settings.model_copy(update=update)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def queued_count(database) -> int:
    with database.reads() as session:
        return session.scalar(select(func.count()).select_from(Job).where(Job.status == QUEUED))


# -- JSON request bodies -------------------------------------------------------------------


def test_json_body_over_the_limit_with_content_length_is_413_before_parsing(client_with, database):
    client = client_with(max_json_body_bytes=200)
    dataset_id = add_dataset(database)
    body = job_body(dataset_id) | {"padding": "x" * 200}  # valid JSON, over the limit
    response = client.post("/v1/jobs", json=body)
    size = int(response.request.headers["content-length"])
    problem = assert_problem(response, 413)
    assert problem["detail"] == (
        "JSON request bodies are limited to 200 bytes (BACKPROP_MAX_JSON_BODY_BYTES, "
        f"max_json_body_bytes) and this one declares {size:,} bytes"
    )
    assert (problem["limit"], problem["setting"]) == (200, "max_json_body_bytes")
    assert response.headers["Connection"] == "close"
    assert queued_count(database) == 0


def test_json_body_over_the_limit_without_content_length_is_413_while_reading(
    client_with, database
):
    client = client_with(max_json_body_bytes=200)

    def chunks() -> Iterator[bytes]:
        yield b'{"dataset_id": "'
        for _ in range(30):
            yield b"0123456789"
        yield b'"}'

    response = client.post(
        "/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.request.headers.get("content-length") is None
    assert response.request.headers["transfer-encoding"] == "chunked"
    problem = assert_problem(response, 413)
    assert problem["detail"] == (
        "JSON request bodies are limited to 200 bytes (BACKPROP_MAX_JSON_BODY_BYTES, "
        "max_json_body_bytes) and this one is longer than that"
    )
    assert (problem["limit"], problem["setting"]) == (200, "max_json_body_bytes")


def test_json_body_at_the_limit_is_read_and_handled(client_with, database):
    dataset_id = add_dataset(database)
    body = job_body(dataset_id)
    content = JobCreate.model_validate(body).model_dump_json().encode()
    client = client_with(max_json_body_bytes=len(content))
    response = client.post(
        "/v1/jobs", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text


def test_every_json_endpoint_has_the_body_limit(client_with):
    client = client_with(max_json_body_bytes=100)
    big = {"rows": [[1.0] * 50]}
    for path in ("/v1/jobs", "/v1/sweeps", f"/v1/models/{'0' * 32}/predictions"):
        assert_problem(client.post(path, json=big), 413)


def test_uploads_keep_their_own_limit_not_the_json_one(client_with):
    client = client_with(max_json_body_bytes=50, max_upload_bytes=10_000)
    csv = b"x0,x1,y\n" + b"1.5,2.5,0\n3.5,4.5,1\n" * 20  # 408 bytes
    response = client.post("/v1/datasets", content=csv, headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text


# -- the work budget ------------------------------------------------------------------------


def test_job_over_the_work_budget_is_422_naming_the_limit(client_with, database):
    client = client_with(max_work=1_000)
    dataset_id = add_dataset(database, rows=ROWS)
    problem = assert_problem(client.post("/v1/jobs", json=job_body(dataset_id, epochs=17)), 422)
    message = (
        "17 epochs x 60 rows = 1,020 is over this service's work budget of 1,000 epochs x rows "
        "per job (BACKPROP_MAX_WORK, max_work); ask for fewer epochs or train on fewer rows"
    )
    assert problem["detail"] == f"training.epochs: {message}"
    assert problem["errors"] == [{"field": "training.epochs", "message": message}]
    assert (problem["limit"], problem["setting"]) == (1_000, "max_work")
    # 16 x 60 = 960 fits.
    assert client.post("/v1/jobs", json=job_body(dataset_id, epochs=16)).status_code == 202


def test_sweep_whose_trials_are_over_the_work_budget_is_422(client_with, database):
    client = client_with(max_work=1_000)
    dataset_id = add_dataset(database, rows=ROWS)
    response = client.post("/v1/sweeps", json=sweep_body(dataset_id, [0.1, 0.5], epochs=17))
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "training.epochs"
    assert (problem["limit"], problem["setting"]) == (1_000, "max_work")
    assert queued_count(database) == 0  # no trial was queued
    ok = client.post("/v1/sweeps", json=sweep_body(dataset_id, [0.1, 0.5], epochs=16))
    assert ok.status_code == 202, ok.text


# -- queued jobs per key --------------------------------------------------------------------


def assert_queue_full(response, queued: int, limit: int, asked: str = "1 more") -> dict:
    problem = assert_problem(response, 429)
    assert response.headers["Retry-After"] == str(QUEUE_RETRY_AFTER_SECONDS)
    assert (problem["limit"], problem["setting"], problem["queued"]) == (
        limit,
        "max_queued_jobs_per_key",
        queued,
    )
    assert "BACKPROP_MAX_QUEUED_JOBS_PER_KEY" in problem["detail"]
    assert (
        f"{queued:,} queued jobs; {asked} would pass the limit of {limit:,}" in (problem["detail"])
    )
    return problem


def test_queued_jobs_per_key_is_429_with_retry_after_and_each_key_has_its_own(
    client_with, database
):
    client = client_with(api_keys=f"{KEY_A},{KEY_B}", max_queued_jobs_per_key=2)
    dataset_id = add_dataset(database)
    submit = lambda key: client.post("/v1/jobs", json=job_body(dataset_id), headers=bearer(key))  # noqa: E731
    first, second = submit(KEY_A), submit(KEY_A)
    assert (first.status_code, second.status_code) == (202, 202)
    problem = assert_queue_full(submit(KEY_A), queued=2, limit=2)
    assert problem["detail"].startswith("this API key has 2 queued jobs")
    assert submit(KEY_B).status_code == 202  # B's budget is its own

    # A job that leaves the queue frees its place: cancelled, or claimed by a worker.
    client.post(f"/v1/jobs/{first.json()['id']}/cancel", headers=bearer(KEY_A))
    third = submit(KEY_A)
    assert third.status_code == 202
    set_job(database, third.json()["id"], status=RUNNING, attempt=1)
    assert submit(KEY_A).status_code == 202
    assert_queue_full(submit(KEY_A), queued=2, limit=2)


def test_a_sweep_needs_room_for_all_its_trials(client_with, database):
    client = client_with(api_keys=KEY_A, max_queued_jobs_per_key=3)
    dataset_id = add_dataset(database)
    assert (
        client.post("/v1/jobs", json=job_body(dataset_id), headers=bearer(KEY_A)).status_code == 202
    )
    response = client.post(
        "/v1/sweeps", json=sweep_body(dataset_id, [0.1, 0.2, 0.3]), headers=bearer(KEY_A)
    )
    assert_queue_full(response, queued=1, limit=3, asked="3 more (one per trial)")
    assert queued_count(database) == 1
    fits = client.post("/v1/sweeps", json=sweep_body(dataset_id, [0.1, 0.2]), headers=bearer(KEY_A))
    assert fits.status_code == 202, fits.text
    assert queued_count(database) == 3


def test_without_keys_every_caller_shares_one_queue_budget(client_with, database):
    client = client_with(max_queued_jobs_per_key=2)
    dataset_id = add_dataset(database)
    for _ in range(2):
        assert client.post("/v1/jobs", json=job_body(dataset_id)).status_code == 202
    problem = assert_queue_full(client.post("/v1/jobs", json=job_body(dataset_id)), 2, 2)
    assert problem["detail"].startswith("there are 2 queued jobs")


def test_jobs_of_other_keys_and_from_before_keys_do_not_count(client_with, database):
    dataset_id = add_dataset(database)
    add_job(database, dataset_id)  # anonymous: submitted while the API had no keys
    add_job(database, dataset_id, api_key_id="someone-else")
    client = client_with(api_keys=KEY_A, max_queued_jobs_per_key=1)
    assert (
        client.post("/v1/jobs", json=job_body(dataset_id), headers=bearer(KEY_A)).status_code == 202
    )


def test_a_retry_with_the_same_idempotency_key_is_replayed_even_when_the_queue_is_full(
    client_with, database
):
    client = client_with(max_queued_jobs_per_key=1)
    dataset_id = add_dataset(database)
    headers = {"Idempotency-Key": "retry-me"}
    first = client.post("/v1/jobs", json=job_body(dataset_id), headers=headers)
    again = client.post("/v1/jobs", json=job_body(dataset_id), headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert_queue_full(client.post("/v1/jobs", json=job_body(dataset_id)), 1, 1)


def test_simultaneous_submissions_never_pass_the_queue_budget(settings, database):
    # Eight threads submit at once for one (anonymous) caller with room for three: the
    # count and the insert cannot interleave (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
    # advisory lock per key), so exactly three jobs are queued.
    limited = settings.model_copy(update={"max_queued_jobs_per_key": 3})
    job_in = JobCreate.model_validate(job_body(add_dataset(database)))
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def submit() -> None:
        start.wait()
        with database.writes() as session:
            try:
                jobs.create_job(session=session, job_in=job_in, settings=limited)
                outcomes.append("queued")
            except TooManyRequests:
                outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["queued"] * 3 + ["refused"] * 5
    assert queued_count(database) == 3


# -- the limits that already existed name themselves too ------------------------------------


def upload(client: TestClient, csv: bytes):
    return client.post("/v1/datasets", content=csv, headers={"Content-Type": "text/csv"})


@pytest.mark.parametrize(
    ("limits", "csv", "status", "setting"),
    [
        ({"max_upload_bytes": 20}, b"x0,x1,y\n1,2,0\n3,4,1\n5,6,0\n", 413, "max_upload_bytes"),
        ({"max_rows": 2}, b"x0,x1,y\n1,2,0\n3,4,1\n5,6,0\n", 413, "max_rows"),
        ({"max_columns": 2}, b"x0,x1,y\n1,2,0\n3,4,1\n", 413, "max_columns"),
        ({"max_classes": 2}, b"x0,y\n1,0\n2,1\n3,2\n", 422, "max_classes"),
    ],
)
def test_upload_limits_name_their_limit_and_setting(client_with, limits, csv, status, setting):
    problem = assert_problem(upload(client_with(**limits), csv), status)
    assert (problem["limit"], problem["setting"]) == (limits[setting], setting)
    assert f"BACKPROP_{setting.upper()}" in problem["detail"]


@pytest.mark.parametrize(
    ("limits", "body", "field", "setting"),
    [
        (
            {"max_hidden_units": 4},
            {"model": {"type": "two_layer_network", "hidden_units": 5}},
            "model.hidden_units",
            "max_hidden_units",
        ),
        ({"max_epochs": 9}, {"training": {"epochs": 10}}, "training.epochs", "max_epochs"),
    ],
)
def test_job_limits_name_their_limit_and_setting(
    client_with, database, limits, body, field, setting
):
    problem = assert_problem(
        client_with(**limits).post("/v1/jobs", json=job_body(add_dataset(database)) | body), 422
    )
    assert (problem["limit"], problem["setting"]) == (limits[setting], setting)
    assert problem["errors"][0]["field"] == field
    assert f"BACKPROP_{setting.upper()}" in problem["detail"]


def test_prediction_rows_limit_names_its_limit(settings):
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 1.5], [1.5, 0.5]])  # (m, n_x)
    data = Data(X=X, y=np.array([0, 1, 0, 1]), features=["a", "b"], label="y")
    app = create_app(settings.model_copy(update={"max_prediction_rows": 2}))
    with TestClient(app) as client:
        trained = fit(data, ModelSpec(type="logistic_regression"), epochs=3)
        model_id = insert_model(app, insert_dataset(app, data), trained)
        response = client.post(
            f"/v1/models/{model_id}/predictions", json={"rows": data.X[:3].tolist()}
        )
    problem = assert_problem(response, 413)
    assert problem["limit"] == 2
    assert "BACKPROP_MAX_PREDICTION_ROWS" in problem["detail"]


# -- documentation ------------------------------------------------------------------------------


def test_every_limit_has_a_row_in_the_readme_configuration_table():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `BACKPROP_([A-Z_]+)` \|", table, flags=re.MULTILINE))
    limits = {name.upper() for name in Settings.model_fields if name.startswith("max_")}
    access = {"API_KEYS", "READ_ONLY_API_KEYS"}
    assert limits | access <= documented, sorted((limits | access) - documented)


def test_the_openapi_document_lists_the_body_limit_and_the_queue_limit(client_with):
    document = client_with().get("/openapi.json").json()
    paths = document["paths"]
    for path in ("/v1/jobs", "/v1/sweeps"):
        assert {"413", "429"} <= set(paths[path]["post"]["responses"]), path
        assert "Retry-After" in paths[path]["post"]["responses"]["429"]["headers"]
    assert "413" in paths["/v1/models/{model_id}/predictions"]["post"]["responses"]
