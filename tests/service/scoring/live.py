"""A live service for the scoring tests: two APIs (one evaluates small sets at once, one
sends every evaluation to the workers) and one worker on a fresh database per backend."""

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_iris

from tests.service.live import (
    LIVE_TIMINGS,
    free_port,
    fresh_database,
    service_env,
    start_api,
    start_worker,
    stop,
    wait_until_ready,
)

BLOCK_ROWS = 64  # small blocks, so a few hundred rows cross several of them


@dataclass(frozen=True)
class Service:
    url: str  # evaluations of up to BACKPROP_INLINE_EVALUATION_ROWS (default) answer at once
    queued_url: str  # BACKPROP_INLINE_EVALUATION_ROWS=0: every evaluation goes to a worker
    database_url: str


def live_service(backend: str, folder) -> Iterator[Service]:
    with fresh_database(backend, folder, "backprop_scoring") as database_url:
        env = service_env(database_url, scoring_block_rows=BLOCK_ROWS, **LIVE_TIMINGS)
        ports = free_port(), free_port()
        processes = [
            start_api(env, ports[0]),
            start_api({**env, "BACKPROP_INLINE_EVALUATION_ROWS": "0"}, ports[1]),
            start_worker(env),
        ]
        try:
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            for url in urls:
                wait_until_ready(url)
            yield Service(urls[0], urls[1], database_url)
        finally:
            for process in processes:
                stop(process)


def breast_cancer() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    return frame.rename(columns={"target": "diagnosis"})


def iris() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame["species"] = [str(data.target_names[t]) for t in data.target]
    return frame


def upload(url: str, frame: pd.DataFrame, label: str, name: str) -> str:
    response = httpx.post(
        f"{url}/v1/datasets",
        params={"name": name, "label": label},
        content=frame.to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
        timeout=60,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def train(url: str, dataset_id: str, model_type: str, **training) -> str:
    body = {"dataset_id": dataset_id, "model": {"type": model_type}, "training": training}
    response = httpx.post(f"{url}/v1/jobs", json=body, timeout=30)
    assert response.status_code == 202, response.text
    job = wait_for(url, f"/v1/jobs/{response.json()['id']}")
    assert job["status"] == "succeeded", job
    return job["model_id"]


def wait_for(url: str, path: str, timeout: float = 120.0) -> dict:
    """GET path until its status is final; returns the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}{path}", timeout=30).json()
        if answer["status"] in ("succeeded", "failed", "cancelled"):
            return answer
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not finish")


def frame_of(response: httpx.Response, file_format: str) -> pd.DataFrame:
    if file_format == "csv":
        return pd.read_csv(io.StringIO(response.text))
    return pd.read_parquet(io.BytesIO(response.content))
