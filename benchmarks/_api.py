"""The service under test as the benchmark sees it: its processes and an HTTP client.

``running_service`` starts the API (and N workers) on a database and stops them when
its block ends; ``Service`` wraps the few endpoints the sections use. Every wait is
bounded: a job that does not end in time fails the section, not the run.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx

from benchmarks._processes import HOST, ProcessGroup, free_port, wait_until_ready

TERMINAL = ("succeeded", "failed", "cancelled")
UPLOAD_CHUNK_BYTES = 1 << 20  # the file is streamed from disk in pieces this large
REQUEST_SECONDS = 600.0  # one request (a 400 MB upload included) may take this long
CSV_TYPE = "text/csv"
IDLE_SETTLE_SECONDS = 0.5  # after "serving": the first claim finds no job, the worker waits
PARQUET_TYPE = "application/vnd.apache.parquet"


class JobDidNotSucceed(RuntimeError):
    pass


def timestamp(text: str) -> float:
    """Seconds since the epoch of an API datetime (ISO 8601, "Z" or an offset)."""
    return datetime.fromisoformat(text).timestamp()


class Service:
    """The API of one running service, its processes, and a keep-alive client to it."""

    def __init__(self, group: ProcessGroup, database_url: str, api: Popen, port: int):
        self.group = group
        self.database_url = database_url
        self.api = api
        self.port = port
        self.base_url = f"http://{HOST}:{port}"
        self.client = httpx.Client(base_url=self.base_url, timeout=REQUEST_SECONDS)
        self.workers: list[Popen] = []

    def close(self) -> None:
        self.client.close()

    # -- processes ---------------------------------------------------------------------------
    def start_workers(self, count: int) -> list[Popen]:
        started = [self.group.start_worker(self.database_url) for _ in range(count)]
        self.workers += started
        return started

    def wait_until_idle(self, worker: Popen, *, timeout: float) -> None:
        """Until the worker has logged that it serves, and a moment more for its first
        (empty) claim: then it waits for new jobs, to be woken by them."""
        deadline = time.monotonic() + timeout
        log = self.group.logs[worker.pid]
        while b" serving " not in log.read_bytes():
            self.group.check_alive(worker)
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {worker.pid} not serving after {timeout:.0f} s")
            time.sleep(0.05)
        time.sleep(IDLE_SETTLE_SECONDS)

    def stop_workers(self) -> None:
        for worker in self.workers:
            self.group.stop(worker)
        self.workers = []

    def check_alive(self) -> None:
        for process in (self.api, *self.workers):
            self.group.check_alive(process)

    # -- endpoints ---------------------------------------------------------------------------
    def upload(self, path: Path, *, name: str, media_type: str = CSV_TYPE) -> dict[str, Any]:
        """POST /v1/datasets with the file as the body, streamed from disk."""

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as file:
                while chunk := file.read(UPLOAD_CHUNK_BYTES):
                    yield chunk

        response = self.client.post(
            "/v1/datasets",
            params={"name": name, "label": "label"},
            content=chunks(),
            headers={"Content-Type": media_type, "Content-Length": str(path.stat().st_size)},
        )
        return self._json(response, 200, 201)

    def delete_dataset(self, dataset_id: str) -> None:
        response = self.client.delete(f"/v1/datasets/{dataset_id}")
        if response.status_code != 204:
            raise RuntimeError(f"DELETE dataset: {response.status_code} {response.text[:500]}")

    def create_sweep(self, body: dict[str, Any]) -> str:
        return self._json(self.client.post("/v1/sweeps", json=body), 201, 202)["id"]

    def create_job(self, body: dict[str, Any]) -> str:
        return self._json(self.client.post("/v1/jobs", json=body), 202)["id"]

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._json(self.client.get(f"/v1/jobs/{job_id}"), 200)

    def wait_for_job(self, job_id: str, *, timeout: float, interval: float) -> dict[str, Any]:
        """Poll GET /v1/jobs/{id} until the job ends; the succeeded job, or an error."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job["status"] in TERMINAL:
                if job["status"] != "succeeded":
                    raise JobDidNotSucceed(
                        f"job {job_id} {job['status']}: {job.get('error_code')} {job.get('error')}"
                    )
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f} s")
            self.check_alive()
            time.sleep(interval)

    def jobs_of_dataset(self, dataset_id: str) -> list[dict[str, Any]]:
        """Every job on the dataset, following the listing's cursor."""
        jobs: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"dataset_id": dataset_id, "limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = self._json(self.client.get("/v1/jobs", params=params), 200)
            jobs += page["data"]
            cursor = page["next_cursor"]
            if not cursor:
                return jobs

    def history(self, job_id: str) -> list[dict[str, Any]]:
        """Every point of the job's history, page by page."""
        points: list[dict[str, Any]] = []
        since = 0
        while True:
            params = {"since_epoch": since, "limit": 10_000}
            page = self._json(self.client.get(f"/v1/jobs/{job_id}/history", params=params), 200)
            points += page["points"]
            if page["next_since_epoch"] is None:
                return points
            since = page["next_since_epoch"]

    @staticmethod
    def _json(response: httpx.Response, *expected: int) -> Any:
        if response.status_code not in expected:
            raise RuntimeError(
                f"{response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text[:500]}"
            )
        return response.json()


@contextmanager
def running_service(log_dir: Path, database_url: str, workers: int = 0) -> Iterator[Service]:
    """The API on a free port of 127.0.0.1 and ``workers`` workers; all stopped at the end."""
    with ProcessGroup(log_dir) as group:
        port = free_port()
        api = group.start_api(database_url, port)
        service = Service(group, database_url, api, port)
        try:
            wait_until_ready(group, api, f"{service.base_url}/readyz")
            service.start_workers(workers)
            yield service
        finally:
            service.close()


@contextmanager
def running_bare_app(log_dir: Path) -> Iterator[tuple[int, int]]:
    """benchmarks.bare_app under the service's uvicorn options; yields (pid, port)."""
    with ProcessGroup(log_dir) as group:
        port = free_port()
        api = group.start_api("sqlite://", port, app="benchmarks.bare_app:create_app")
        wait_until_ready(group, api, f"http://{HOST}:{port}/healthz")
        yield api.pid, port
