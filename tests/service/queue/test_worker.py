"""Worker processes on both databases: draining the queue, SIGKILL, SIGTERM, cancel, failures.

Every test runs real `python -m service.queue.worker` processes against the real
database, with leases of seconds so that lost workers show quickly.
"""

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from engine import ModelSpec, TrainingSpec
from service.core.database import Database
from service.core.settings import Settings
from service.core.tables import Checkpoint, Job, JobHistory, Model, utcnow
from service.queue.worker import run_worker
from tests.service.factories import add_dataset, add_job, get_job, history_epochs, set_job
from tests.service.live import service_env, start_worker, stop

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # timing-sensitive: run alone

TIMINGS = {
    "lease_seconds": 2,
    "heartbeat_seconds": 0.3,
    "sweep_seconds": 0.5,
    "poll_seconds": 0.1,
    "checkpoint_seconds": 0.5,
    "flush_seconds": 0.1,
    "log_level": "info",
}

SMALL_JOB = {
    "model": ModelSpec(),
    "training": TrainingSpec(epochs=30, early_stopping=None),
}
# Epochs of 5-30 ms on 20k rows: long enough to stop mid-run, short enough to finish soon.
LONG_JOB = {
    "model": ModelSpec(type="two_layer_network", hidden_units=128),
    "training": TrainingSpec(
        optimizer="gd", learning_rate=0.5, epochs=300, early_stopping=None, tolerance=0.0
    ),
}


@pytest.fixture
def spawn(database_url) -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts workers (TIMINGS, overridable); stops those still running at the end."""
    processes: list[subprocess.Popen] = []

    def start(**settings: object) -> subprocess.Popen:
        process = start_worker(service_env(database_url, **{**TIMINGS, **settings}))
        processes.append(process)
        return process

    yield start
    for process in processes:
        stop(process)


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for_status(database: Database, job_id: str, statuses: set[str], timeout: float) -> Job:
    return wait_for(
        lambda: (job := get_job(database, job_id)).status in statuses and job,
        timeout,
        f"job {job_id} to be {sorted(statuses)}",
    )


def checkpoint_epoch(database: Database, job_id: str) -> int | None:
    with database.reads() as session:
        return session.scalar(select(Checkpoint.epoch).where(Checkpoint.job_id == job_id))


def worker_of(job: Job, processes: list[subprocess.Popen]) -> subprocess.Popen:
    """The process whose worker id (host:pid) holds ``job``."""
    pid = int(job.worker.rsplit(":", 1)[1])
    return next(p for p in processes if p.pid == pid)


def assert_continuous(database: Database, job_id: str, epochs: int) -> dict[int, list[int]]:
    """History rows are exactly epochs 1..epochs; returns the epochs each attempt wrote."""
    rows = history_epochs(database, job_id)
    assert [epoch for epoch, _ in rows] == list(range(1, epochs + 1))
    by_attempt: dict[int, list[int]] = {}
    for epoch, attempt in rows:
        by_attempt.setdefault(attempt, []).append(epoch)
    return by_attempt


def test_two_workers_drain_twenty_jobs_each_claimed_once(database, spawn):
    dataset_id = add_dataset(database, rows=200, features=4)
    job_ids = [add_job(database, dataset_id, **SMALL_JOB) for _ in range(20)]

    workers = [spawn(), spawn()]
    for job_id in job_ids:
        wait_for_status(database, job_id, {"succeeded", "failed", "cancelled"}, timeout=30)

    with database.reads() as session:
        jobs = session.scalars(select(Job)).all()
        models = session.scalars(select(Model.job_id)).all()
    assert {(j.status, j.stop_reason, j.attempt, j.epoch) for j in jobs} == {
        ("succeeded", "max_epochs", 1, 30)
    }
    assert sorted(models) == sorted(job_ids)
    assert {j.worker.rsplit(":", 1)[1] for j in jobs} <= {str(w.pid) for w in workers}
    for job_id in job_ids:
        assert assert_continuous(database, job_id, 30) == {1: list(range(1, 31))}


def test_idle_worker_picks_up_new_job_promptly(database, spawn):
    # Polls every 30 s: only a wake-up (PostgreSQL's NOTIFY, SQLite's doorbell) is in time.
    dataset_id = add_dataset(database, rows=100, features=3)
    spawn(sweep_seconds=30, poll_seconds=30)
    warm_up = add_job(database, dataset_id, **SMALL_JOB)
    wait_for_status(database, warm_up, {"succeeded"}, timeout=20)
    latencies = []
    for _ in range(5):
        time.sleep(0.3)  # let the worker go idle
        job_id = add_job(database, dataset_id, **SMALL_JOB)
        job = wait_for_status(database, job_id, {"succeeded"}, timeout=10)
        latencies.append((job.started_at - job.created_at).total_seconds())

    print(f"insert-to-claim seconds on {database.engine.dialect.name}: {latencies}")
    assert max(latencies) < 0.5


def test_killed_worker_job_resumes_on_another_with_continuous_history(database, spawn):
    dataset_id = add_dataset(database, rows=20_000, features=20)
    job_id = add_job(database, dataset_id, **LONG_JOB)
    workers = [spawn(), spawn()]
    wait_for(lambda: (checkpoint_epoch(database, job_id) or 0) >= 5, 30, "a checkpoint")
    running = get_job(database, job_id)
    assert running.status == "running"
    assert running.epoch < 300

    victim = worker_of(running, workers)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()
    saved_epoch = checkpoint_epoch(database, job_id)

    resumed = wait_for(
        lambda: (job := get_job(database, job_id)).attempt == 2 and job, 10, "a second claim"
    )
    assert resumed.worker != running.worker
    assert time.monotonic() - killed_at < 2 + 0.5 + 1.5  # lease + sweep + slack
    job = wait_for_status(database, job_id, {"succeeded", "failed", "cancelled"}, timeout=60)

    assert (job.status, job.stop_reason, job.attempt, job.epoch) == (
        "succeeded",
        "max_epochs",
        2,
        300,
    )
    by_attempt = assert_continuous(database, job_id, 300)
    first = by_attempt[1]
    assert first == list(range(1, len(first) + 1))
    assert len(first) >= saved_epoch  # the resume started from that checkpoint, or a later one
    assert by_attempt[2] == list(range(len(first) + 1, 301))
    with database.reads() as session:
        assert session.scalar(select(Model.job_id)) == job_id


def test_sigterm_releases_running_job_and_another_worker_finishes_it(database, spawn):
    dataset_id = add_dataset(database, rows=20_000, features=20)
    job_id = add_job(database, dataset_id, **LONG_JOB)
    first = spawn()
    wait_for(lambda: get_job(database, job_id).epoch >= 10, 30, "ten epochs")

    signalled = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=5) == 0
    assert time.monotonic() - signalled < 3

    released = get_job(database, job_id)
    assert (released.status, released.worker, released.lease_expires_at) == ("queued", None, None)
    assert released.attempt == 1
    assert checkpoint_epoch(database, job_id) == released.epoch  # checkpoint of the last epoch
    assert released.epoch < 300

    spawn()
    job = wait_for_status(database, job_id, {"succeeded", "failed", "cancelled"}, timeout=60)
    assert (job.status, job.stop_reason, job.attempt) == ("succeeded", "max_epochs", 2)
    by_attempt = assert_continuous(database, job_id, 300)
    assert by_attempt[1] == list(range(1, released.epoch + 1))
    assert by_attempt[2] == list(range(released.epoch + 1, 301))


def test_cancel_running_job_stops_within_one_flush_interval(database, spawn):
    dataset_id = add_dataset(database, rows=20_000, features=20)
    job_id = add_job(database, dataset_id, **LONG_JOB)
    spawn()
    wait_for(lambda: get_job(database, job_id).epoch >= 5, 30, "five epochs")

    set_job(database, job_id, status="cancelling", updated_at=utcnow())  # as the API does
    asked = time.monotonic()
    job = wait_for_status(database, job_id, {"cancelled", "succeeded", "failed"}, timeout=10)
    took = time.monotonic() - asked

    assert (job.status, job.stop_reason, job.attempt) == ("cancelled", "cancelled", 1)
    assert took < 1.0  # flush_seconds 0.1 plus an epoch or two
    assert 5 <= job.epoch < 300
    assert assert_continuous(database, job_id, job.epoch) == {1: list(range(1, job.epoch + 1))}
    # It keeps a model: its best epoch's parameters so far, marked cancelled.
    with database.reads() as session:
        model = session.scalars(select(Model).where(Model.job_id == job_id)).one()
    assert model.metrics["stop_reason"] == "cancelled"
    assert model.metrics["model_epoch"] == job.best_epoch
    kept = "last" if job.best_epoch == job.epoch else "best"
    assert model.metrics["model_parameters"] == kept


def test_jobs_that_cannot_train_fail_and_the_worker_serves_the_next(database, spawn):
    good = add_dataset(database, rows=100, features=3, seed=1)
    one_class = add_dataset(database, rows=50, features=3, classes=(1,), seed=2)
    deleted = add_job(database, None, **SMALL_JOB)  # its dataset was deleted (SET NULL)
    invalid = add_job(database, one_class, **SMALL_JOB)
    valid = add_job(database, good, **SMALL_JOB)
    worker = spawn()

    job = wait_for_status(database, valid, {"succeeded", "failed"}, timeout=20)
    assert job.status == "succeeded"
    missing = get_job(database, deleted)
    assert (missing.status, missing.error_code) == ("failed", "dataset_missing")
    assert missing.error == "the job's dataset was deleted before it was trained"
    refused = get_job(database, invalid)
    assert (refused.status, refused.error_code) == ("failed", "training_error")
    assert refused.error == "need at least 2 classes to train a classifier, got [1]"
    assert worker.poll() is None  # still serving


def test_diverging_job_fails_with_stop_reason_diverged(database, spawn):
    dataset_id = add_dataset(database, rows=200, features=4)
    job_id = add_job(
        database,
        dataset_id,
        model=ModelSpec(),
        training=TrainingSpec(optimizer="gd", learning_rate=1e300, epochs=50),
    )
    spawn()

    job = wait_for_status(database, job_id, {"succeeded", "failed", "cancelled"}, timeout=20)

    assert (job.status, job.stop_reason, job.error_code) == ("failed", "diverged", "diverged")
    assert job.error.startswith(f"training diverged at epoch {job.epoch}")
    assert job.train_loss is None
    history = history_epochs(database, job_id)
    assert [epoch for epoch, _ in history] == list(range(1, job.epoch + 1))
    with database.reads() as session:
        last = session.get(JobHistory, (job_id, job.epoch))
        assert last.train_loss is None  # NaN stored as NULL
        assert session.scalar(select(Model.id)) is None


def test_run_worker_in_a_thread_serves_until_its_stop_event(database, database_url):
    # How an embedding program (a CLI, a test) runs a worker without a process of its own.
    dataset_id = add_dataset(database, rows=100, features=3)
    job_id = add_job(database, dataset_id, **SMALL_JOB)
    stop_event = threading.Event()
    settings = Settings(database_url=database_url, **TIMINGS)
    thread = threading.Thread(
        target=run_worker,
        args=(settings,),
        kwargs={"worker_id": "in-thread", "stop_event": stop_event},
    )
    thread.start()
    try:
        job = wait_for_status(database, job_id, {"succeeded", "failed"}, timeout=20)
    finally:
        stop_event.set()
        thread.join(timeout=5)

    assert not thread.is_alive()
    assert (job.status, job.worker, job.attempt) == ("succeeded", "in-thread", 1)
