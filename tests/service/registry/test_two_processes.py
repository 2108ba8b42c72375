"""Two live API processes (uvicorn) and a worker on one database, SQLite file and PostgreSQL:
what one process deletes or moves, the other sees on its very next request, even with the
model in its cache.

The models are logistic regressions the worker trains on scikit-learn's breast cancer data,
uploaded as a CSV.
"""

import time
from collections.abc import Iterator

import httpx
import pytest
from sklearn.datasets import load_breast_cancer

from service.core.migrate import upgrade
from tests.conftest import BACKENDS, POSTGRES_URL, create_postgres_database, drop_postgres_database
from tests.service.live import (
    free_port,
    service_env,
    start_api,
    start_worker,
    stop,
    wait_until_ready,
)

TIMINGS = {"poll_seconds": 0.05, "flush_seconds": 0.1, "heartbeat_seconds": 0.5}
BASE = "/v1/registered-models"
MOVE_SECONDS = 1.0  # the bound: a move is seen by every process within a second


def cancer_csv() -> tuple[bytes, list[list[float]]]:
    frame = load_breast_cancer(as_frame=True).frame
    rows = frame.drop(columns="target").iloc[:3].to_numpy().tolist()
    return frame.to_csv(index=False).encode(), rows


@pytest.fixture(scope="module", params=BACKENDS)
def apis(request, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """Base URLs of two API processes sharing one fresh database, with one worker."""
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need BACKPROP_TEST_POSTGRES_URL")
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path_factory.mktemp('two') / 'backprop.db'}"
    else:
        database_url = create_postgres_database("backprop_two_apis")
    upgrade(database_url)
    env = service_env(database_url, **TIMINGS)
    ports = [free_port(), free_port()]
    processes = [start_api(env, port) for port in ports] + [start_worker(env)]
    try:
        urls = tuple(f"http://127.0.0.1:{port}" for port in ports)
        for url in urls:
            wait_until_ready(url)
        yield urls
    finally:
        for process in processes:
            stop(process)
        if request.param != "sqlite":
            drop_postgres_database(database_url)


@pytest.fixture(scope="module")
def trained(apis) -> list[str]:
    """Ids of four logistic regressions trained by the worker (submitted through API a)."""
    a, _ = apis
    body, _ = cancer_csv()
    upload = httpx.post(
        f"{a}/v1/datasets",
        params={"name": "cancer", "label": "target"},
        content=body,
        headers={"content-type": "text/csv"},
        timeout=30,
    )
    assert upload.status_code == 201, upload.text
    job = {"dataset_id": upload.json()["id"], "model": {"type": "logistic_regression"}}
    job_ids = []
    for seed in range(4):
        created = httpx.post(f"{a}/v1/jobs", json={**job, "training": {"epochs": 30, "seed": seed}})
        assert created.status_code == 202, created.text
        job_ids.append(created.json()["id"])
    model_ids = []
    deadline = time.monotonic() + 120
    for job_id in job_ids:
        while (state := httpx.get(f"{a}/v1/jobs/{job_id}").json())["status"] != "succeeded":
            assert state["status"] in ("queued", "running"), state
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        model_ids.append(state["model_id"])
    return model_ids


def predict(url: str, path: str) -> httpx.Response:
    return httpx.post(f"{url}{path}", json={"rows": cancer_csv()[1]}, timeout=10)


def test_a_model_deleted_through_one_process_is_404_on_the_other_at_once(apis, trained):
    a, b = apis
    path = f"/v1/models/{trained[2]}/predictions"
    for url in (a, b):  # both caches hold the model
        for _ in range(2):
            assert predict(url, path).status_code == 200
    assert httpx.delete(f"{a}/v1/models/{trained[2]}").status_code == 204
    gone = predict(b, path)
    assert gone.status_code == 404
    assert gone.json()["detail"] == f"model {trained[2]!r} does not exist"
    assert httpx.get(f"{b}/v1/models/{trained[2]}").status_code == 404
    assert predict(a, path).status_code == 404


def test_a_job_deleted_through_one_process_takes_its_model_from_the_other(apis, trained):
    a, b = apis
    path = f"/v1/models/{trained[3]}/predictions"
    assert predict(a, path).status_code == 200
    assert predict(b, path).status_code == 200
    job_id = httpx.get(f"{a}/v1/models/{trained[3]}").json()["job_id"]
    assert httpx.delete(f"{b}/v1/jobs/{job_id}").status_code == 204
    assert predict(a, path).status_code == 404
    assert httpx.get(f"{a}/v1/jobs/{job_id}").status_code == 404


def test_an_alias_moved_through_one_process_is_followed_by_the_other_within_a_second(apis, trained):
    a, b = apis
    assert httpx.post(f"{a}{BASE}", json={"name": "cancer"}).status_code == 201
    for model_id in trained[:2]:
        assert (
            httpx.post(f"{a}{BASE}/cancer/versions", json={"model_id": model_id}).status_code == 201
        )
    assert httpx.put(f"{a}{BASE}/cancer/aliases/live", json={"version": 1}).status_code == 200
    path = f"{BASE}/cancer/aliases/live/predictions"
    for url in (a, b):
        answer = predict(url, path)
        assert answer.headers["x-model-id"] == trained[0]
        assert answer.headers["x-model-version"] == "1"
    expected = predict(a, f"/v1/models/{trained[1]}/predictions").json()

    moved = httpx.put(f"{a}{BASE}/cancer/aliases/live", json={"version": 2})
    assert moved.status_code == 200
    moved_at = time.monotonic()
    answer = predict(b, path)  # b's first request after the move
    seen_after = time.monotonic() - moved_at
    # No cache stands between the alias and the database: the first request sees the move.
    assert answer.headers["x-model-version"] == "2"
    assert answer.headers["x-model-id"] == trained[1]
    assert answer.json() == expected
    assert seen_after < MOVE_SECONDS
    history = httpx.get(f"{b}{BASE}/cancer/aliases/live").json()["moves"]
    assert [(m["from_version"], m["to_version"]) for m in history] == [(1, 2), (None, 1)]

    # The model behind version 1 is free to go; version 2's is held by the alias.
    assert httpx.delete(f"{b}/v1/models/{trained[0]}").status_code == 204
    held = httpx.delete(f"{b}/v1/models/{trained[1]}")
    assert held.status_code == 409
    assert held.json()["aliases"] == [{"name": "cancer", "alias": "live", "version": 2}]
