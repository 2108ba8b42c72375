"""A worker process: takes jobs from the database queue and trains them with the engine.

    python -m service.queue.worker            (the CLI's `backprop worker` calls run_worker)

The main thread claims the oldest queued job, trains it, and claims again; when
the queue is empty it waits for PostgreSQL's NOTIFY (LISTEN on a dedicated
connection) or, on SQLite, for a ring of the doorbell beside the database file
(service.queue.notify), polling every ``poll_seconds`` should a ring be missed.
Two helper threads:

* the sweeper, for the life of the process, settles expired leases every
  ``sweep_seconds`` (it keeps sweeping while the main thread trains, so a dead
  worker's job is re-queued even when every live worker is busy);
* the lease keeper, for the life of a job, renews the job's lease every
  ``heartbeat_seconds`` and raises flags when the lease is lost or the job is
  being cancelled; the engine callback reads them after every epoch.

SIGTERM or SIGINT stops claiming; a running job stops after its current epoch,
stores a checkpoint and is released (queued again, or cancelled if it was being
cancelled); the process exits 0. A second signal kills at once.

One job's run: service.queue.job_run. Database outages: service.queue.outages.
"""

import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from service.core.database import Database, postgres_connect_args
from service.core.logs import configure_logging
from service.core.metrics import (
    JOB_CLAIMS,
    LEASE_EXPIRIES,
)
from service.core.settings import Settings, get_settings
from service.queue.claims import Claim, claim_job
from service.queue.job_run import JobLog, JobRun
from service.queue.notify import CHANNEL, Doorbell, doorbell_path
from service.queue.outages import (
    Outage,
)
from service.queue.outcomes import sweep_expired_leases
from service.queue.scoring import TaskRun, claim_scoring
from service.queue.scoring_claims import sweep_expired_tasks

log = logging.getLogger("service.queue.worker")

NOTIFY_SLICE_SECONDS = 0.5  # an idle PostgreSQL worker checks its stop flag this often


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- the process ----------------------------------------------------------------------------


def run_worker(
    settings: Settings, *, worker_id: str | None = None, stop_event: threading.Event | None = None
) -> None:
    """Serve the queue until ``stop_event`` is set (or SIGTERM/SIGINT, on the main thread)."""
    stop = stop_event or threading.Event()
    worker_id = worker_id or default_worker_id()
    database = Database(settings.database_url)
    # What start-up made lives as long as the process: keep full collections from walking
    # it (tens of ms each, inside jobs' overhead); see service.app.settle_startup_garbage.
    gc.collect()
    gc.freeze()
    log.info(
        "worker %s serving %s",
        worker_id,
        make_url(database.url).render_as_string(),
        extra={"worker_id": worker_id},
    )
    sweeper = Sweeper(database, settings)
    waiter = (
        Doorbell(doorbell_path(database.url), settings.poll_seconds, stop)
        if database.is_sqlite
        else NotifyWaiter(database.url, settings.sweep_seconds, stop)
    )
    claims = Outage(log, "claiming jobs")
    try:
        with stopping_on_signals(stop):
            sweeper.start()
            while not stop.is_set():
                claim = _claim(database, worker_id, settings, stop, claims)
                if claim is not None:
                    waiter.pass_on()
                    JobRun(database, settings, claim, stop).run()
                elif (task := claim_scoring(database, worker_id, settings)) is not None:
                    waiter.pass_on()  # batch predictions and evaluations: service.queue.scoring
                    TaskRun(database, settings, task, stop).run()
                else:
                    waiter.wait()
    finally:
        sweeper.finish()
        waiter.close()
        database.dispose()
    log.info("worker %s stopped", worker_id, extra={"worker_id": worker_id})


def _claim(
    database: Database, worker_id: str, settings: Settings, stop: threading.Event, outage: Outage
) -> Claim | None:
    try:
        claim = claim_job(database=database, worker_id=worker_id, settings=settings)
    except SQLAlchemyError as error:
        stop.wait(max(settings.poll_seconds, outage.failed(error)))
        return None
    outage.succeeded()
    if claim is not None:
        JOB_CLAIMS.inc()
        resumed = (
            f" from the checkpoint of epoch {claim.checkpoint_epoch}" if claim.checkpoint else ""
        )
        JobLog(claim).info("claimed by %s%s", worker_id, resumed)
    return claim


@contextmanager
def stopping_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop``; a second one acts as it would have without us."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are delivered to the main thread only; the caller owns stop
        return
    previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}

    def on_signal(number: int, _frame: object) -> None:
        log.info(
            "%s received: stopping (a running job is checkpointed and released)",
            signal.strsignal(number),
        )
        stop.set()
        for other, handler in previous.items():
            signal.signal(other, handler)

    for number in previous:
        signal.signal(number, on_signal)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class Sweeper(threading.Thread):
    """Settles expired leases every ``sweep_seconds`` until ``finish``."""

    def __init__(self, database: Database, settings: Settings):
        super().__init__(name="sweeper", daemon=True)
        self.database, self.settings = database, settings
        self.outage = Outage(log, "sweeping expired leases")
        self._done = threading.Event()

    def finish(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join()

    def run(self) -> None:
        while True:
            try:
                changed = sweep_expired_leases(database=self.database, settings=self.settings)
                changed += sweep_expired_tasks(database=self.database, settings=self.settings)
                self.outage.succeeded()
                if changed:
                    LEASE_EXPIRIES.inc(changed)
                    log.info("settled %d job(s) or scoring task(s) whose lease expired", changed)
            except SQLAlchemyError as error:
                self.outage.failed(error)  # the next sweep is the retry
            if self._done.wait(self.settings.sweep_seconds):
                return


class NotifyWaiter:
    """PostgreSQL: LISTEN on a dedicated connection; wake on NOTIFY or after ``seconds``.

    LISTEN is issued before the first claim, so a job queued between a failed
    claim and the wait still wakes the worker (the notification waits in the
    connection). ``seconds`` bounds the wait should a notification be missed
    (a reconnect); the stop flag is checked every NOTIFY_SLICE_SECONDS.
    """

    def __init__(self, url: str, seconds: float, stop: threading.Event):
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.connect_args = postgres_connect_args(url)
        self.seconds, self.stop = seconds, stop
        self.connection: psycopg.Connection | None = None
        self.outage = Outage(log, "listening for new jobs (polling meanwhile)")
        self._listen()

    def _listen(self) -> None:
        try:
            self.connection = psycopg.connect(self.dsn, autocommit=True, **self.connect_args)
            self.connection.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as error:
            self.outage.failed(error)
            self.close()
            return
        self.outage.succeeded()

    def wait(self) -> None:
        if self.connection is None:
            self.stop.wait(self.seconds)
            self._listen()
            return
        deadline = time.monotonic() + self.seconds
        try:
            while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
                timeout = min(left, NOTIFY_SLICE_SECONDS)
                if any(True for _ in self.connection.notifies(timeout=timeout, stop_after=1)):
                    for _ in self.connection.notifies(timeout=0):  # one claim serves them all
                        pass
                    return
        except psycopg.Error as error:
            self.outage.failed(error)  # the next wait reconnects
            self.close()

    def pass_on(self) -> None:
        pass  # every listening worker receives the NOTIFY itself

    def close(self) -> None:
        if self.connection is not None:
            with suppress(psycopg.Error):
                self.connection.close()
            self.connection = None


# -- one job --------------------------------------------------------------------------------


def main() -> None:
    """`python -m service.queue.worker`: serve the queue with the settings from the environment."""
    settings = get_settings()
    configure_logging(settings)
    run_worker(settings)


if __name__ == "__main__":
    main()
