"""The fair queue against real processes: uvicorn on 127.0.0.1 and real worker processes,
two projects with keys made in the database (service.core.api_keys.create_key).

- One worker, project a queues 100 short jobs, then project b queues 1: b's job starts
  within one of a's jobs' duration (+ slack) of being queued, before a's next-but-one job.
- Two workers, project a's max_running_jobs 1: never two of a's jobs run at once, while
  project b's jobs run beside them.
"""

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.core.api_keys import create_key
from service.core.database import Database
from service.core.roles import Role
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

pytestmark = [pytest.mark.slow, pytest.mark.serial]

# A two-layer network in full-batch gradient descent for a fixed number of epochs: a few
# tenths of a second a job (the figures are measured below, not assumed).
JOB_TRAINING = {"optimizer": "gd", "epochs": 40, "early_stopping": None, "tolerance": 0.0}
JOB_MODEL = {"type": "two_layer_network", "hidden_units": 32}
SLACK_SECONDS = 1.0  # a claim's round trip and the notify or poll that wakes the worker


def csv_table(rows: int = 2_000, features: int = 8) -> bytes:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(rows, features))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    lines = [",".join([*(f"x{j}" for j in range(features)), "y"])]
    lines += [",".join([*(f"{v:.5f}" for v in X[i]), str(y[i])]) for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


class Project:
    """A project's client: its key, and its dataset once uploaded."""

    def __init__(self, base_url: str, key: str):
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        self.dataset_id = ""

    def upload(self, body: bytes) -> None:
        answer = self.http.post("/v1/datasets", content=body, headers={"content-type": "text/csv"})
        assert answer.status_code in (200, 201), answer.text
        self.dataset_id = answer.json()["id"]

    def queue(self) -> str:
        body = {"dataset_id": self.dataset_id, "model": JOB_MODEL, "training": JOB_TRAINING}
        answer = self.http.post("/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    def job(self, job_id: str) -> dict:
        return self.http.get(f"/v1/jobs/{job_id}").json()

    def wait(self, job_ids: list[str], timeout: float = 120) -> list[dict]:
        """The jobs once every one has finished (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = [self.job(job_id) for job_id in job_ids]
            if all(job["status"] in ("succeeded", "failed", "cancelled") for job in jobs):
                return jobs
            time.sleep(0.1)
        raise TimeoutError(f"jobs not finished after {timeout} s")

    def cancel(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            self.http.post(f"/v1/jobs/{job_id}/cancel")


@contextmanager
def two_projects(
    backend: str, folder: Path, *, workers: int, quotas_of_a: dict | None = None
) -> Iterator[tuple[Project, Project]]:
    """An API and ``workers`` workers on a fresh database; clients of projects a and b."""
    with fresh_database(backend, folder, "backprop_fair") as database_url:
        database = Database(database_url)
        with database.writes() as session, session.begin():
            key_a, _ = create_key(session, project="a", role=Role.admin)
            key_b, _ = create_key(session, project="b", role=Role.trainer)
        database.dispose()
        env = service_env(database_url, **LIVE_TIMINGS)
        port = free_port()
        processes = [start_api(env, port)]
        processes += [start_worker(env) for _ in range(workers)]
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_ready(base_url)
            a, b = Project(base_url, key_a), Project(base_url, key_b)
            if quotas_of_a:
                answer = a.http.put("/v1/project/quotas", json=quotas_of_a)
                assert answer.status_code == 200, answer.text
            table = csv_table()
            a.upload(table)
            b.upload(table)
            yield a, b
        finally:
            for process in processes:
                stop(process)


def moment(job: dict, field: str) -> float:
    return datetime.fromisoformat(job[field]).timestamp()


def wait_until_started(project: Project, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = project.job(job_id)
        if job["started_at"] is not None:
            return job
        time.sleep(0.02)
    raise TimeoutError(f"job {job_id} did not start in {timeout} s")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_project_with_one_job_is_not_starved_by_one_with_a_hundred(backend, tmp_path):
    with two_projects(backend, tmp_path, workers=1) as (a, b):
        queued_by_a = [a.queue() for _ in range(100)]
        # Let a's jobs run for a while: a has a latest start, and its jobs' duration shows.
        finished = a.wait(queued_by_a[:3])
        durations = [moment(job, "finished_at") - moment(job, "started_at") for job in finished]
        job_seconds = max(durations)
        assert job_seconds < 3.0, durations  # the training spec is short, as meant

        b_job = b.job(b.queue())
        started = wait_until_started(b, b_job["id"])
        waited = moment(started, "started_at") - moment(b_job, "created_at")
        a_jobs = [a.job(job_id) for job_id in queued_by_a]
        a.cancel([job["id"] for job in a_jobs if job["status"] in ("queued", "running")])

    # Started before a's next-but-one job: at most the one running when b queued ended first.
    started_meanwhile = [
        job
        for job in a_jobs
        if job["started_at"]
        and moment(b_job, "created_at") < moment(job, "started_at") < moment(started, "started_at")
    ]
    assert len(started_meanwhile) == 0, (waited, job_seconds, started_meanwhile)
    assert waited <= job_seconds + SLACK_SECONDS, (waited, job_seconds)
    print(f"\n{backend}: b waited {waited:.3f} s; a's jobs took {durations} s")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_never_run_two_jobs_of_a_project_limited_to_one(backend, tmp_path):
    with two_projects(backend, tmp_path, workers=2, quotas_of_a={"max_running_jobs": 1}) as (
        a,
        b,
    ):
        queued_by_a = [a.queue() for _ in range(4)]
        queued_by_b = [b.queue() for _ in range(3)]
        a_jobs = a.wait(queued_by_a)
        b_jobs = b.wait(queued_by_b)

    assert {job["status"] for job in a_jobs + b_jobs} == {"succeeded"}
    spans = sorted((moment(j, "started_at"), moment(j, "finished_at")) for j in a_jobs)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, spans  # a's jobs ran one after another
    beside = [
        job
        for job in b_jobs
        if any(
            moment(job, "started_at") < end and start < moment(job, "finished_at")
            for start, end in spans
        )
    ]
    assert beside, (spans, b_jobs)  # b's jobs ran on the other worker meanwhile
