"""Fault tests: real API and worker processes, killed, paused and cut off from their database.

Every process a test starts goes through the ``processes`` fixture. Its teardown
SIGKILLs whatever is still alive (SIGKILL ends a stopped process too), so a
failing test leaves nothing behind; each process writes its output to a log
file of its own, which tests read for what a worker said (that it lost its
lease, for one) and which is printed when a test fails.

Each test prints the figures it measured on a line starting ``FIGURES`` (see
``report``); ``pytest -s tests/faults`` shows them.
"""

import http.client
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from engine import ModelSpec, TrainingSpec
from service.core.database import Database
from service.core.tables import Checkpoint, Job, JobHistory, Model
from tests.service.factories import get_job, history_epochs
from tests.service.live import ROOT

T = TypeVar("T")

TERMINAL = {"succeeded", "failed", "cancelled"}
LOG_TAIL_LINES = 40  # of each process's log, printed when a test fails

# Seconds, not the defaults' tens of seconds: a lost worker shows within two seconds.
FAST_QUEUE = {
    "lease_seconds": 1.5,
    "heartbeat_seconds": 0.2,
    "sweep_seconds": 0.3,
    "poll_seconds": 0.1,
    "checkpoint_seconds": 0.2,
    "flush_seconds": 0.1,
    "log_level": "info",
}


def long_job(epochs: int) -> dict[str, Any]:
    """A two-layer network in full-batch gradient descent: on 20k x 20 rows, 5-30 ms an epoch.

    No early stopping and no tolerance, so it runs exactly ``epochs`` epochs.
    """
    return {
        "model": ModelSpec(type="two_layer_network", hidden_units=128),
        "training": TrainingSpec(
            optimizer="gd", learning_rate=0.5, epochs=epochs, early_stopping=None, tolerance=0.0
        ),
    }


SMALL_JOB = {"model": ModelSpec(), "training": TrainingSpec(epochs=30, early_stopping=None)}


# -- processes ------------------------------------------------------------------------------


class Processes:
    """The processes of one test, each logging to a file of its own; all SIGKILLed at the end."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def _start(self, command: list[str], env: dict[str, str], name: str) -> subprocess.Popen:
        log_path = self.log_dir / f"{len(self.started):02d}-{name}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT
            )
        self.started.append((process, log_path))
        return process

    def worker(self, env: dict[str, str]) -> subprocess.Popen:
        """`python -m service.queue.worker` (the worker id is host:pid)."""
        return self._start([sys.executable, "-m", "service.queue.worker"], env, "worker")

    def api(self, env: dict[str, str], port: int) -> subprocess.Popen:
        """The API under uvicorn on 127.0.0.1:``port``."""
        command = [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        return self._start(command, env, "api")

    def log_of(self, process: subprocess.Popen) -> str:
        path = next(path for started, path in self.started if started is process)
        return path.read_text(errors="replace")

    def alive(self) -> list[subprocess.Popen]:
        return [process for process, _ in self.started if process.poll() is None]

    def kill_all(self) -> None:
        for process in self.alive():
            kill(process)

    def tails(self) -> str:
        parts = []
        for process, path in self.started:
            lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            parts.append(f"--- {path.name} (pid {process.pid}, exit {process.returncode})")
            parts.extend(lines)
        return "\n".join(parts)


def kill(process: subprocess.Popen) -> None:
    """kill -9, and reap it."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def processes(request, tmp_path) -> Iterator[Processes]:
    """Starts processes for a test; SIGKILLs every one still alive when the test ends."""
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()
        call = getattr(request.node, "report_call", None)
        if call is not None and call.failed:
            print(started.tails())


@pytest.fixture
def database(database_url) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


# -- waiting and looking --------------------------------------------------------------------


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if value := condition():
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_for_terminal(database: Database, job_ids: list[str], timeout: float) -> list[Job]:
    def ended() -> list[Job] | None:
        jobs = [get_job(database, job_id) for job_id in job_ids]
        return jobs if all(job.status in TERMINAL for job in jobs) else None

    return wait_for(ended, timeout, f"{len(job_ids)} job(s) to end", interval=0.1)


def wait_until_ready(port: int, timeout: float = 30.0) -> None:
    """Until GET /readyz on 127.0.0.1:``port`` answers 200 (stdlib HTTP: cheap to poll)."""

    def ready() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        try:
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    wait_for(ready, timeout, f"the API on port {port}", interval=0.05)


def worker_pid(job: Job) -> int:
    """The pid in a `python -m service.queue.worker` worker id (host:pid)."""
    return int(job.worker.rsplit(":", 1)[1])


def checkpoint_of(database: Database, job_id: str) -> tuple[int, int] | None:
    """(attempt, epoch) of the job's stored checkpoint."""
    with database.reads() as session:
        row = session.execute(
            select(Checkpoint.attempt, Checkpoint.epoch).where(Checkpoint.job_id == job_id)
        ).one_or_none()
        return tuple(row) if row else None


def models_of(database: Database, job_id: str) -> int:
    with database.reads() as session:
        return len(session.scalars(select(Model.id).where(Model.job_id == job_id)).all())


def assert_continuous(database: Database, job_id: str, epochs: int) -> dict[int, list[int]]:
    """The history is exactly epochs 1..epochs, each attempt's rows one unbroken stretch after
    the previous attempt's; returns the epochs each attempt wrote."""
    rows = history_epochs(database, job_id)
    assert [epoch for epoch, _ in rows] == list(range(1, epochs + 1))
    attempts = [attempt for _, attempt in rows]
    assert attempts == sorted(attempts), f"attempts interleave: {attempts}"
    by_attempt: dict[int, list[int]] = {}
    for epoch, attempt in rows:
        by_attempt.setdefault(attempt, []).append(epoch)
    return by_attempt


def history_rows(database: Database, job_id: str) -> list[tuple[Any, ...]]:
    """Every column of every history row of the job, in epoch order."""
    columns = [column for column in JobHistory.__table__.columns]
    with database.reads() as session:
        rows = session.execute(
            select(*columns).where(JobHistory.job_id == job_id).order_by(JobHistory.epoch)
        )
        return [tuple(row) for row in rows]


def job_columns(database: Database, job_id: str) -> dict[str, Any]:
    """Every column of the job's row."""
    with database.reads() as session:
        row = session.execute(select(Job.__table__).where(Job.id == job_id)).one()
        return dict(row._mapping)


# -- figures --------------------------------------------------------------------------------


def report(test: str, **figures: Any) -> None:
    """Print the figures a test measured (``pytest -s`` shows them) as one JSON line."""
    print(f"\nFIGURES {test}: {json.dumps(figures, default=str, sort_keys=True)}")


def seconds(values: list[float]) -> dict[str, Any]:
    """min / median / max of a list of durations, rounded to milliseconds."""
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "min": round(ordered[0], 3),
        "median": round(ordered[len(ordered) // 2], 3),
        "max": round(ordered[-1], 3),
        "all": [round(value, 3) for value in values],
    }
