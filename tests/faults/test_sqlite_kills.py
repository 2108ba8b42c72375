"""kill -9 of the API and the workers during writes, 20 times on one SQLite file: the file
stays intact and no job is left half-written.

Each round starts the API and two workers on the same file, uploads datasets and submits
jobs through the API while the workers train (writing history, checkpoints, models), and
SIGKILLs all three at a random moment 0.2-1.0 s in. After the rounds, and again after a
final clean run that trains every job to its end, the file and every row are checked
against the invariants the queue maintains (service.queue.claims):

* ``record_progress`` writes a stretch of history and the progress fields in one
  transaction, and the claim that resumes a job deletes the history after its
  checkpoint and resets the progress fields in the same transaction: so a job's
  ``epoch`` is always the last epoch of its history (0 with none), its losses are that
  row's, and the history is 1..epoch with no gap;
* a checkpoint is stored only once the history reaches its epoch;
* a job ends ``succeeded`` in the transaction that adds its one Model row;
* a dataset's row and all its chunks commit together.
"""

import io
import random
import sqlite3
import threading
import time
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from service.core.database import Database
from service.core.tables import Checkpoint, Dataset, DatasetChunk, Job, JobHistory, Model
from tests.faults.conftest import (
    FAST_QUEUE,
    TERMINAL,
    Processes,
    kill,
    report,
    seconds,
    wait_for,
    wait_until_ready,
)
from tests.service.factories import add_dataset
from tests.service.live import free_port, service_env

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # timing-sensitive: run alone

ROUNDS = 20
TOTAL_SECONDS = 240  # a hard bound on the rounds, the checks and the final run
FINAL_RUN_SECONDS = 60  # for every job to end once nothing is killed any more
JOBS_PER_ROUND = 2  # every one of them is trained to its end in the final run
QUEUE = {**FAST_QUEUE, "max_attempts": 1_000}  # kills are not the jobs' fault here

JOB_BODIES: list[dict[str, Any]] = [
    {  # runs all its epochs: a succeeded job's history must be 1..600
        "model": {"type": "two_layer_network", "hidden_units": 32},
        "training": {"optimizer": "gd", "learning_rate": 0.5, "epochs": 600,
                     "early_stopping": None, "tolerance": 0.0},
    },
    {  # mini-batches, a hold-out and early stopping: it may end before its epochs
        "model": {"type": "logistic_regression"},
        "training": {"optimizer": "adam", "epochs": 200, "batch_size": 256,
                     "validation_fraction": 0.2, "early_stopping": {"patience": 20}},
    },
]  # fmt: skip


def upload_body(number: int) -> bytes:
    """A CSV of 2,000 rows x 10 features, different for each ``number`` (a new dataset)."""
    rng = np.random.default_rng(number)
    X = rng.normal(size=(2_000, 10))
    y = (X[:, 0] > 0).astype(int)
    buffer = io.StringIO()
    np.savetxt(buffer, np.column_stack([X, y]), delimiter=",", fmt="%.6f",
               header=",".join([*(f"x{i}" for i in range(10)), "y"]), comments="")  # fmt: skip
    return buffer.getvalue().encode()


class Writer(threading.Thread):
    """Uploads datasets and submits jobs through the API until the API is killed."""

    def __init__(self, base_url: str, dataset_id: str, first_upload: int):
        """``first_upload`` numbers this writer's files (upload_body), apart from others'."""
        super().__init__(daemon=True)
        self.base_url, self.dataset_id, self.upload = base_url, dataset_id, first_upload
        self.submitted = self.uploaded = 0
        self.unexpected: list[str] = []  # answers other than 202 / 201
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            try:
                while not self.halt.is_set():
                    if self.submitted < JOBS_PER_ROUND:
                        body = {"dataset_id": self.dataset_id, **JOB_BODIES[self.submitted % 2]}
                        response = client.post("/v1/jobs", json=body)
                        if response.status_code != 202:
                            self.unexpected.append(f"{response.status_code} {response.text}")
                            return
                        self.submitted += 1
                    files = {"file": ("upload.csv", upload_body(self.upload), "text/csv")}
                    self.upload += 1  # a new file each time, even if this one is cut short
                    response = client.post("/v1/datasets", files=files, params={"label": "y"})
                    if response.status_code != 201:
                        self.unexpected.append(f"{response.status_code} {response.text}")
                        return
                    self.uploaded += 1
            except httpx.TransportError:
                pass  # the API was killed under the request


def check_invariants(database: Database) -> Counter:
    """Assert what must hold whatever moment the processes died at; returns jobs by status."""
    with database.reads() as session:
        jobs = session.scalars(select(Job)).all()
        history: dict[str, list[JobHistory]] = {}
        for row in session.scalars(select(JobHistory).order_by(JobHistory.epoch)):
            history.setdefault(row.job_id, []).append(row)
        checkpoints = dict(session.execute(select(Checkpoint.job_id, Checkpoint.epoch)).all())
        models = Counter(session.scalars(select(Model.job_id)))
        stored = {
            (dataset_id, part): size
            for dataset_id, part, size in session.execute(
                select(
                    DatasetChunk.dataset_id,
                    DatasetChunk.part,
                    func.sum(func.length(DatasetChunk.data)),
                ).group_by(DatasetChunk.dataset_id, DatasetChunk.part)
            )
        }
        datasets = session.scalars(select(Dataset)).all()

    for job in jobs:
        rows = history.get(job.id, [])
        where = f"job {job.id} ({job.status}, attempt {job.attempt})"
        assert [row.epoch for row in rows] == list(range(1, len(rows) + 1)), where
        assert job.epoch == len(rows), where
        last = rows[-1] if rows else None
        assert (job.train_loss, job.val_loss) == (
            (last.train_loss, last.val_loss) if last else (None, None)
        ), where
        assert checkpoints.get(job.id, 0) <= job.epoch, where
        assert 0 <= job.attempt <= job.max_attempts, where
        assert models[job.id] == (1 if job.status == "succeeded" else 0), where
        if job.status in TERMINAL:
            assert job.finished_at is not None, where
            assert job.lease_expires_at is None, where
        if job.status == "succeeded":
            assert job.stop_reason is not None, where
            if job.stop_reason == "max_epochs":
                assert job.epoch == job.epochs, where
        if job.status == "queued":
            assert job.worker is None, where
            assert job.lease_expires_at is None, where
        if job.status == "running":
            assert job.worker is not None, where
            assert job.lease_expires_at is not None, where
    assert set(models) <= {job.id for job in jobs}
    for dataset in datasets:
        assert stored.get((dataset.id, "X")) == dataset.rows * len(dataset.features) * 8
        assert stored.get((dataset.id, "y")) == dataset.rows * 4
    assert {dataset_id for dataset_id, _ in stored} <= {dataset.id for dataset in datasets}
    return Counter(job.status for job in jobs)


def count_running(database: Database) -> int:
    with database.reads() as session:
        return session.scalar(select(func.count()).where(Job.status == "running"))


def integrity_check(path: str) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("PRAGMA integrity_check")]


@pytest.mark.timeout(TOTAL_SECONDS)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_kill_api_and_workers_twenty_times_leaves_sqlite_intact_and_no_job_half_written(
    database: Database, database_url: str, processes: Processes
):
    began = time.monotonic()
    path = make_url(database_url).database
    env = service_env(database_url, **QUEUE)
    dataset_id = add_dataset(database, rows=5_000, features=20)
    chance = random.Random(11)
    kill_moments, running_at_kill, ready = [], [], []
    unexpected, submitted, uploaded = [], 0, 0

    for round_number in range(ROUNDS):
        port = free_port()
        round_began = time.monotonic()
        group = [processes.api(env, port), processes.worker(env), processes.worker(env)]
        try:
            wait_until_ready(port, timeout=20)
            ready.append(round(time.monotonic() - round_began, 2))
            writer = Writer(f"http://127.0.0.1:{port}", dataset_id, round_number * 1_000)
            writer.start()
            moment = chance.uniform(0.2, 1.0)
            time.sleep(moment)
        finally:
            for process in group:
                process.kill()
            for process in group:
                kill(process)
        writer.halt.set()
        writer.join(timeout=10)
        kill_moments.append(round(moment, 3))
        running_at_kill.append(count_running(database))
        submitted += writer.submitted
        uploaded += writer.uploaded
        unexpected += writer.unexpected
    rounds_took = time.monotonic() - began
    assert unexpected == []

    assert integrity_check(path) == ["ok"]
    after_kills = check_invariants(database)

    port = free_port()
    final = [processes.api(env, port), processes.worker(env), processes.worker(env)]
    wait_until_ready(port, timeout=20)
    wait_for(
        lambda: set(check_invariants(database)) <= TERMINAL,
        timeout=FINAL_RUN_SECONDS,
        what="every job to end",
        interval=0.25,
    )
    for process in final:
        process.terminate()
    # uvicorn re-raises the SIGTERM it handled once it has shut down.
    assert [process.wait(timeout=10) for process in final] in ([0, 0, 0], [-15, 0, 0])

    assert integrity_check(path) == ["ok"]
    at_end = check_invariants(database)
    took = time.monotonic() - began
    with database.reads() as session:
        attempts = Counter(session.scalars(select(Job.attempt)))
        datasets = session.scalar(select(func.count()).select_from(Dataset))
    report(
        "kill -9 API + 2 workers x20 [sqlite]",
        rounds=ROUNDS,
        kill_moments_seconds=kill_moments,
        jobs_running_at_each_kill=running_at_kill,
        api_ready_after_start_seconds=seconds(ready),
        jobs_submitted=submitted,
        uploads_completed=uploaded,
        datasets_stored=datasets,
        jobs_by_status_after_kills=dict(after_kills),
        jobs_by_status_at_end=dict(at_end),
        jobs_by_attempts=dict(sorted(attempts.items())),
        rounds_seconds=round(rounds_took, 1),
        total_seconds=round(took, 1),
    )
    # A job whose answer the kill cut off is stored all the same (at most one a round).
    assert submitted <= sum(at_end.values()) <= submitted + ROUNDS
    assert set(at_end) == {"succeeded"}
    assert datasets >= uploaded + 1  # an upload killed after its commit is stored unanswered
