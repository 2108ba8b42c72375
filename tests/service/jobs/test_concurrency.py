"""Many clients and many workers at once, on real processes and both databases.

- 50 simultaneous POST /v1/jobs with one Idempotency-Key make exactly one job (threads
  against a real uvicorn server: TestClient would serialize them).
- 4 worker processes drain 200 jobs: every job succeeds at its first attempt, each is
  trained by one worker once, none is lost, each has one model.
- SQLite with 4 processes writing at once (2 API servers, 2 workers) under clients
  that upload, submit, cancel and read: no client ever gets a 5xx (no "database is
  locked" reaches anyone), and no server or worker log mentions a locked database.

Every wait is bounded; the processes are stopped at the end of each test.
"""

import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from engine import ModelSpec, TrainingSpec
from service.core.states import TERMINAL_STATES
from service.core.tables import Job, JobHistory, Model, utcnow
from service.queue.notify import notify_job_queued
from tests.service import live
from tests.service.factories import add_dataset

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # timing-sensitive: run alone

TIMINGS = {
    "lease_seconds": 10,
    "heartbeat_seconds": 1,
    "poll_seconds": 0.05,
    "sweep_seconds": 1,
    "checkpoint_seconds": 5,
    "flush_seconds": 0.25,
}
TINY_JOB = {
    "model": ModelSpec(type="logistic_regression"),
    "training": TrainingSpec(epochs=2, early_stopping=None, validation_fraction=0.0),
}
LOCKED = re.compile(r"database is locked|database table is locked", re.IGNORECASE)


class Processes:
    """API servers and workers whose output goes to log files (to be searched afterwards)."""

    def __init__(self, database_url: str, folder: Path, **settings: object):
        self.env = live.service_env(database_url, **{**TIMINGS, **settings})
        self.folder = folder
        self.running: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = self.folder / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, env=self.env, cwd=live.ROOT, stdout=output, stderr=output
            )
        self.running.append(process)
        return process

    def api(self) -> str:
        """An API server (as tests.service.live.start_api); returns its base URL, ready."""
        port = live.free_port()
        command = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        self._start("api", command)
        base_url = f"http://127.0.0.1:{port}"
        live.wait_until_ready(base_url)
        return base_url

    def worker(self) -> subprocess.Popen:
        return self._start("worker", [sys.executable, "-m", "service.queue.worker"])

    def stop(self) -> None:
        for process in self.running:
            live.stop(process)

    def log_text(self, name: str = "") -> str:
        return "\n".join(
            log.read_text(errors="replace") for log in self.logs if log.name.startswith(name)
        )


@pytest.fixture
def processes(database_url, tmp_path) -> Iterator[Callable[..., Processes]]:
    started: list[Processes] = []

    def start(**settings: object) -> Processes:
        group = Processes(database_url, tmp_path, **settings)
        started.append(group)
        return group

    yield start
    for group in started:
        group.stop()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# One Idempotency-Key, 50 requests at once --------------------------------------------------


def test_fifty_simultaneous_submissions_with_one_idempotency_key_make_one_job(database, processes):
    dataset_id = add_dataset(database)
    base_url = processes(log_level="warning").api()
    body = {"dataset_id": dataset_id, "training": {"epochs": 5}}
    key = str(uuid.uuid4())
    start = threading.Barrier(50)

    def submit(_: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            start.wait(timeout=30)  # all 50 send together
            return client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(submit, range(50)))

    assert [r.status_code for r in responses] == [202] * 50, [r.text for r in responses][:3]
    job_ids = {r.json()["id"] for r in responses}
    assert len(job_ids) == 1
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert replayed.count("true") == 49  # the other 49 were answered with the first answer
    assert len({r.content for r in responses}) == 1  # byte for byte the same body
    with database.reads() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1


# 4 workers, 200 jobs -------------------------------------------------------------------------

TRAINING = re.compile(r"job ([0-9a-f]{32}) attempt (\d+): training")


def add_jobs(database, dataset_id: str, count: int) -> set[str]:
    """``count`` queued tiny jobs, committed at once (as a sweep's trials are)."""
    model, training = TINY_JOB["model"], TINY_JOB["training"]
    now = utcnow()
    jobs = [
        Job(
            dataset_id=dataset_id,
            model_type=model.type,
            model_spec=asdict(model),
            training_spec=training.to_dict(),
            epochs=training.epochs,
            created_at=now + timedelta(microseconds=i),
        )
        for i in range(count)
    ]
    with database.writes() as session, session.begin():
        session.add_all(jobs)
        notify_job_queued(session)
    return {job.id for job in jobs}


def test_four_workers_drain_two_hundred_jobs_each_claimed_once(database, processes):
    dataset_id = add_dataset(database, rows=30, features=2)
    group = processes(log_level="info")
    workers = [group.worker() for _ in range(4)]
    # All four wait on the queue before it fills, so each gets a share.
    wait_until(
        lambda: group.log_text("worker").count(" serving ") == 4, timeout=60, what="4 workers"
    )
    job_ids = add_jobs(database, dataset_id, 200)

    def all_ended() -> bool:
        with database.reads() as session:
            live_jobs = select(func.count()).where(Job.status.not_in(TERMINAL_STATES))
            return session.scalar(live_jobs) == 0

    wait_until(all_ended, timeout=120, what="200 jobs to end")

    with database.reads() as session:
        jobs = list(session.scalars(select(Job)))
        models = Counter(session.scalars(select(Model.job_id)))
        history_attempts = set(session.scalars(select(JobHistory.attempt).distinct()))
    assert {job.id for job in jobs} == job_ids  # none lost, none added
    assert Counter((job.status, job.attempt) for job in jobs) == {("succeeded", 1): 200}
    assert models == Counter(dict.fromkeys(job_ids, 1))  # one model each
    assert history_attempts == {1}
    # Each job was trained once, by one worker: the workers' own logs say so.
    trained = Counter(TRAINING.findall(group.log_text("worker")))
    assert trained == Counter({(job_id, "1"): 1 for job_id in job_ids})
    # All four took part (the queue is shared, not drained by the first to start).
    pids = Counter(job.worker.rsplit(":", 1)[1] for job in jobs)
    assert set(pids) == {str(worker.pid) for worker in workers}


# SQLite with four writing processes ----------------------------------------------------------


CLIENT_ROUNDS = 12  # each client's upload -> submit -> cancel rounds


def client_rounds(base_url: str, seed: int) -> list[tuple[str, int]]:
    """One client's rounds: upload a dataset, submit jobs, cancel one, read; (request, status)."""
    seen = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for round_ in range(CLIENT_ROUNDS):
            rows = "".join(f"{i * seed % 13},{(i + round_) % 5},{i % 2}\n" for i in range(40))
            upload = client.post(
                "/v1/datasets",
                content=f"a,b,y\n{rows}",
                headers={"Content-Type": "text/csv"},
                params={"name": f"client-{seed}-{round_}"},
            )
            seen.append(("upload", upload.status_code))
            if upload.status_code not in (200, 201):
                continue
            dataset_id = upload.json()["id"]
            job_ids = []
            for epochs in (3, 400):
                job = client.post(
                    "/v1/jobs", json={"dataset_id": dataset_id, "training": {"epochs": epochs}}
                )
                seen.append(("submit", job.status_code))
                if job.status_code == 202:
                    job_ids.append(job.json()["id"])
            if job_ids:
                cancel = client.post(f"/v1/jobs/{job_ids[-1]}/cancel")
                seen.append(("cancel", cancel.status_code))
            seen.append(("list", client.get("/v1/jobs", params={"limit": 5}).status_code))
            seen.append(("datasets", client.get("/v1/datasets").status_code))
    return seen


def test_sqlite_under_four_writing_processes_never_says_database_is_locked(
    database_url, database, processes
):
    if not database.is_sqlite:
        pytest.skip("SQLite's single writer is what this is about")
    group = processes(log_level="info")
    urls = [group.api(), group.api()]  # two API processes write to the file...
    group.worker(), group.worker()  # ...and two workers
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: client_rounds(urls[i % 2], seed=i + 3), range(4)))
    statuses = Counter(status for seen in results for _, status in seen)
    requests = Counter(request for seen in results for request, _ in seen)
    assert all(status < 500 for status in statuses), statuses
    assert requests["upload"] == 4 * CLIENT_ROUNDS
    assert requests["submit"] == 4 * CLIENT_ROUNDS * 2
    assert set(statuses) <= {200, 201, 202}, statuses

    def all_ended() -> bool:
        with database.reads() as session:
            live_jobs = select(func.count()).where(Job.status.not_in(TERMINAL_STATES))
            return session.scalar(live_jobs) == 0

    wait_until(all_ended, timeout=120, what="the submitted jobs to end")
    logs = group.log_text()
    assert not LOCKED.search(logs), LOCKED.search(logs)
    assert "Traceback" not in logs, logs[-5000:]
    with database.reads() as session:
        ended = Counter(session.scalars(select(Job.status)))
    assert set(ended) <= {"succeeded", "cancelled"}, ended
