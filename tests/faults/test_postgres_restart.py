"""PostgreSQL stopped for seconds while jobs train, then started again: the API answers 503
problem+json at once while it is away, and the API and the workers reconnect by themselves;
every job ends succeeded with a continuous history.

The test runs its own PostgreSQL cluster (initdb into a temporary directory, on a free
port, as the postgres OS user), so stopping it disturbs no other test. It is skipped where
no PostgreSQL server binaries are installed or the tests cannot act as the postgres user.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from service.core.database import Database
from service.core.migrate import upgrade
from service.queue.notify import CHANNEL
from tests.faults.conftest import (
    FAST_QUEUE,
    Processes,
    assert_continuous,
    long_job,
    models_of,
    report,
    wait_for,
    wait_for_terminal,
    wait_until_ready,
    worker_pid,
)
from tests.service.factories import add_dataset, add_job, get_job
from tests.service.live import free_port, service_env

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # timing-sensitive: run alone

OUTAGE_SECONDS = 4.0
ANSWER_WITHIN_SECONDS = 5.0  # every request, database or not
# Leases longer than the outage: the workers keep their jobs through it.
QUEUE = {
    **FAST_QUEUE,
    "lease_seconds": 8,
    "heartbeat_seconds": 0.3,
    "sweep_seconds": 0.5,
    "checkpoint_seconds": 0.3,
    "max_attempts": 5,
}
EPOCHS = 240
ENDING_MARGIN = 90  # epochs (0.7-2.5 s) left to a job when the database goes: it ends meanwhile
SUBMITTED_BODY = {
    "model": {"type": "two_layer_network", "hidden_units": 128},
    "training": {"optimizer": "gd", "learning_rate": 0.5, "epochs": EPOCHS,
                 "early_stopping": None, "tolerance": 0.0},
}  # fmt: skip


def postgres_bin() -> Path | None:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/<ver>/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


@dataclass
class Cluster:
    """A private PostgreSQL cluster run by pg_ctl as the postgres OS user."""

    bin_dir: Path
    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/backprop"

    def run(self, program: str, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", str(self.bin_dir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{program} {args}: {done.stdout}{done.stderr}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.data_dir / "server.log")
        self.run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A migrated database ``backprop`` on a private cluster; stopped and deleted at the end."""
    bin_dir = postgres_bin()
    if bin_dir is None or shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("needs PostgreSQL server binaries and root (to run them as postgres)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("needs the postgres OS user (PostgreSQL refuses to run as root)")
    data_dir = Path(tempfile.mkdtemp(prefix="backprop-faults-pg-"))
    shutil.chown(data_dir, "postgres", "postgres")
    private = Cluster(bin_dir, data_dir, free_port())
    started = False
    try:
        private.run("initdb", "-D", str(data_dir), "-U", "postgres", "-A", "trust", "--no-sync")
        private.start()
        started = True
        admin = create_engine(private.url.replace("/backprop", "/postgres"))
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("CREATE DATABASE backprop"))
        admin.dispose()
        upgrade(private.url)
        yield private
    finally:
        if started:
            private.stop(mode="immediate")
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class Probe:
    began: float  # seconds on the monotonic clock
    took: float
    request: str
    status: int | None  # None: no answer (an exception)
    content_type: str | None
    retry_after: str | None
    error: str | None = None


class Prober(threading.Thread):
    """Asks the API, every 50 ms, for a job, the job list, readiness and (once ``posting``
    is set, until one is queued) to queue a job."""

    def __init__(self, base_url: str, job_ids: list[str], dataset_id: str):
        super().__init__(daemon=True)
        self.base_url, self.job_ids, self.dataset_id = base_url, job_ids, dataset_id
        self.probes: list[Probe] = []
        self.created: list[str] = []  # jobs queued through the API (202)
        self.posting = threading.Event()  # from the outage on, until one job is queued
        self.halt = threading.Event()

    def requests(self) -> Iterator[tuple[str, str, dict]]:
        number = 0
        while True:
            number += 1
            yield "GET", f"/v1/jobs/{self.job_ids[number % len(self.job_ids)]}", {}
            yield "GET", "/v1/jobs", {"params": {"limit": 5}}
            yield "GET", "/readyz", {}
            if number % 4 == 0 and self.posting.is_set() and not self.created:
                body = {"dataset_id": self.dataset_id, **SUBMITTED_BODY}
                yield "POST", "/v1/jobs", {"json": body}

    def run(self) -> None:
        timeout = httpx.Timeout(ANSWER_WITHIN_SECONDS * 2)
        with httpx.Client(base_url=self.base_url, timeout=timeout) as client:
            for method, path, options in self.requests():
                if self.halt.wait(0.05):
                    return
                began = time.monotonic()
                try:
                    response = client.request(method, path, **options)
                except httpx.HTTPError as error:
                    took = time.monotonic() - began
                    self.probes.append(
                        Probe(began, took, f"{method} {path}", None, None, None, repr(error))
                    )
                    continue
                took = time.monotonic() - began
                headers = response.headers
                self.probes.append(
                    Probe(
                        began,
                        took,
                        f"{method} {path}",
                        response.status_code,
                        headers.get("content-type"),
                        headers.get("retry-after"),
                    )
                )
                if method == "POST" and response.status_code == 202:
                    self.created.append(response.json()["id"])


def listening_sessions(database: Database) -> int:
    """Sessions of this database whose last statement was LISTEN (a worker's wake-up line)."""
    with database.engine.connect() as connection:
        return connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query = :listen"
            ),
            {"listen": f"LISTEN {CHANNEL}"},
        )


@pytest.mark.timeout(150)
def test_postgres_restart_mid_training_api_answers_503_and_every_job_succeeds(
    cluster: Cluster, processes: Processes
):
    # While the database is away: one job trains its last epochs (its end is written once
    # the database is back, by the same attempt), and one worker is sent SIGTERM (it gives
    # its job back once it can; a new worker takes its place, as `backprop serve` would).
    database = Database(cluster.url)
    prober = None
    try:
        dataset_id = add_dataset(database, rows=20_000, features=20)
        ending = add_job(database, dataset_id, **long_job(EPOCHS))
        stopped_job = add_job(database, dataset_id, **long_job(EPOCHS + EPOCHS // 2))
        job_ids = [ending, stopped_job] + [
            add_job(database, dataset_id, **long_job(EPOCHS)) for _ in range(2)
        ]
        env = service_env(cluster.url, **QUEUE)
        port = free_port()
        api = processes.api(env, port)
        workers = [processes.worker(env), processes.worker(env)]
        wait_until_ready(port, timeout=30)
        wait_for(lambda: listening_sessions(database) == 2, 20, "both workers to LISTEN")
        prober = Prober(f"http://127.0.0.1:{port}", job_ids, dataset_id)
        prober.start()
        wait_for(
            lambda: (
                get_job(database, ending).epoch >= EPOCHS - ENDING_MARGIN
                and get_job(database, stopped_job).epoch >= 5
            ),
            timeout=60,
            what=f"a job {ENDING_MARGIN} epochs from its end",
        )
        by_pid = {worker.pid: worker for worker in workers}
        finisher = by_pid[worker_pid(get_job(database, ending))]
        terminated = by_pid[worker_pid(get_job(database, stopped_job))]

        database.dispose()  # our own connections too will be cut
        prober.posting.set()
        stopping = time.monotonic()
        cluster.stop()
        stopped = time.monotonic()
        terminated.send_signal(signal.SIGTERM)
        time.sleep(OUTAGE_SECONDS)
        starting = time.monotonic()
        cluster.start()
        started = time.monotonic()

        first_answer = wait_for(
            lambda: next(
                (p for p in prober.probes if p.began >= started and p.status in (200, 202)),
                None,
            ),
            timeout=30,
            what="a 2xx after the restart",
        )
        assert terminated.wait(timeout=QUEUE["lease_seconds"] + 5) == 0
        terminated_exit = time.monotonic() - started
        replacement = processes.worker(env)
        time.sleep(1.0)
        prober.halt.set()
        prober.join(timeout=15)
        every_job = job_ids + prober.created
        jobs = {job.id: job for job in wait_for_terminal(database, every_job, timeout=90)}
        all_done = time.monotonic() - started
        # Idle workers listen again: their LISTEN connections died with the server.
        wait_for(lambda: listening_sessions(database) == 2, 10, "both workers to LISTEN again")
        listening_after = time.monotonic() - started
    finally:
        if prober is not None:
            prober.halt.set()
        database.dispose()

    away = [p for p in prober.probes if stopped <= p.began and p.began + p.took <= starting]
    back = [p for p in prober.probes if p.began >= started + 1.0]
    report(
        "PostgreSQL restart mid-training",
        outage_seconds=round(starting - stopping, 3),
        pg_ctl_stop_seconds=round(stopped - stopping, 3),
        pg_ctl_start_seconds=round(started - starting, 3),
        requests_while_away=len(away),
        statuses_while_away=sorted({(p.request.split(" ")[0], p.status) for p in away}),
        slowest_answer_while_away_seconds=round(max(p.took for p in away), 3),
        slowest_answer_overall_seconds=round(max(p.took for p in prober.probes), 3),
        first_2xx_after_start_seconds=round(first_answer.began + first_answer.took - started, 3),
        sigterm_worker_exited_after_start_seconds=round(terminated_exit, 3),
        workers_listening_again_after_start_seconds=round(listening_after, 3),
        jobs=len(every_job),
        jobs_queued_through_the_api=len(prober.created),
        attempts=sorted(job.attempt for job in jobs.values()),
        all_jobs_ended_after_start_seconds=round(all_done, 3),
    )

    # The API: an answer to every request, fast; 503 problem+json while the database is away.
    assert [p for p in prober.probes if p.status is None] == []
    assert max(p.took for p in prober.probes) < ANSWER_WITHIN_SECONDS
    assert {p.status for p in prober.probes} <= {200, 202, 503}
    assert len(away) >= 20
    assert {p.status for p in away} == {503}
    assert {p.content_type for p in away} == {"application/problem+json"}
    assert {p.retry_after for p in away} == {"1"}
    assert {p.status for p in back} <= {200, 202}
    assert len(prober.created) == 1  # queued once the database was back

    # The jobs: all trained to their end, once each but the one given back at SIGTERM.
    for job in jobs.values():
        assert (job.status, job.stop_reason) == ("succeeded", "max_epochs")
        assert job.attempt == (2 if job.id == stopped_job else 1)
        assert_continuous(database, job.id, job.epochs)
        assert models_of(database, job.id) == 1
    finisher_log = processes.log_of(finisher)
    # Its last epochs are written with its end, in one transaction (complete_job).
    assert f"job {ending} attempt 1: recording the end of the attempt failed" in finisher_log
    assert f"job {ending} attempt 1: recording the end of the attempt works again" in finisher_log
    assert f"job {stopped_job} attempt 1: released for another worker" in (
        processes.log_of(terminated)
    )
    assert api.poll() is None
    assert finisher.poll() is None
    assert replacement.poll() is None
