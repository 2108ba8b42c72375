"""A worker process: takes jobs from the database queue and trains them with the engine.

    python -m service.queue.worker            (the CLI's `backprop worker` calls run_worker)

The main thread claims the oldest queued job, trains it, and claims again; when
the queue is empty it waits for PostgreSQL's NOTIFY (LISTEN on a dedicated
connection) or, on SQLite, for a ring of the doorbell beside the database file
(service.queue.notify), polling every ``poll_seconds`` should a ring be missed. Two helper threads:

* the sweeper, for the life of the process, settles expired leases every
  ``sweep_seconds`` (it keeps sweeping while the main thread trains, so a dead
  worker's job is re-queued even when every live worker is busy);
* the lease keeper, for the life of a job, renews the job's lease every
  ``heartbeat_seconds`` and raises flags when the lease is lost or the job is
  being cancelled; the engine callback reads them after every epoch.

What a job leaves in the database, so that a SIGKILL at any moment costs at
most ``checkpoint_seconds`` of training and never breaks the history:

1. every ``flush_seconds`` the buffered epochs go out with the progress fields in
   one transaction (``record_progress``); the last ones go out with the job's end,
   in the transaction that completes it (``complete_job``);
2. every ``checkpoint_seconds`` the buffer is flushed first and then the
   engine's checkpoint is stored, so the stored history always reaches the
   checkpoint's epoch;
3. the next claim deletes the history after the checkpoint's epoch and the
   engine, resumed from that checkpoint, runs those epochs again: the history
   is 1..N with no gap and no repeat.

SIGTERM or SIGINT stops claiming; a running job stops after its current epoch,
stores a checkpoint and is released (queued again, or cancelled if it was being
cancelled); the process exits 0. A second signal kills at once.

Failures of a job never stop the worker: a deleted dataset fails the job with
``error_code`` "dataset_missing", data or specs the engine refuses (ValueError)
with "training_error" and the engine's message, anything else with
"worker_error", its traceback going to the log only.

The database going away (a restart, a network cut) is not the job's failure. Every
part of the worker retries with backoff (RETRY_FIRST_SECONDS doubling up to
RETRY_MAX_SECONDS) and logs one warning when an outage starts and one line when it
ends (``Outage``), not a traceback per try. Training goes on meanwhile, its epochs
kept in memory until a flush gets through; the writes that end an attempt (and the
dataset's load) are retried for up to ``lease_seconds``, after which the job is left
to its lease: the sweeper re-queues it once the database is back, and fencing
refuses whatever this attempt still sends.
"""

import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import numpy as np
import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError

from engine import EpochMetrics, FitResult, Progress, TrainingSpec, fit
from engine.specs import model_spec_from_dict
from service.core.database import Database, postgres_connect_args
from service.core.logs import configure_logging
from service.core.metrics import (
    EPOCH_DURATION,
    JOB_CLAIMS,
    JOB_DURATION,
    LEASE_EXPIRIES,
    LOST,
    RELEASED,
)
from service.core.settings import Settings, get_settings
from service.core.states import CANCELLED, CANCELLING, FAILED, SUCCEEDED
from service.core.tables import Dataset
from service.datasets.rows import load_rows, training_dtype
from service.datasets.storage import labels_of
from service.queue.claims import (
    Claim,
    claim_job,
    complete_job,
    fail_job,
    heartbeat,
    record_progress,
    release_job,
    store_checkpoint,
    sweep_expired_leases,
)
from service.queue.notify import CHANNEL, Doorbell, doorbell_path

log = logging.getLogger("service.queue.worker")

NOTIFY_SLICE_SECONDS = 0.5  # an idle PostgreSQL worker checks its stop flag this often
RETRY_FIRST_SECONDS = 0.1  # after a failed database call, the first retry waits this long,
RETRY_MAX_SECONDS = 2.0  # then twice as long each time, up to this

T = TypeVar("T")


class JobError(Exception):
    """A job cannot be trained, for a reason its owner can act on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class JobLog(logging.LoggerAdapter):
    """Every line about a job names it: ``job <id> attempt <n>: ...`` (and extra job_id)."""

    def __init__(self, claim: Claim):
        super().__init__(log, {"job_id": claim.job_id, "attempt": claim.attempt})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return f"job {self.extra['job_id']} attempt {self.extra['attempt']}: {msg}", kwargs


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class DatabaseAway(Exception):
    """The database stayed unreachable for as long as an attempt waits for it (lease_seconds)."""


def is_outage(error: Exception) -> bool:
    """Is this the database being away (refused, cut, shutting down, locked), rather than
    something wrong with the statement?"""
    away = (OperationalError, InterfaceError, DisconnectionError, psycopg.OperationalError)
    return isinstance(error, away) or getattr(error, "connection_invalidated", False)


def database_reason(error: Exception) -> str:
    """The first line of what the driver said: no SQL, no traceback."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0][:300] if lines else type(cause).__name__


class Outage:
    """One part of the worker losing the database: a warning when that starts, the delay
    before the next try while it lasts (doubling, capped), an info line when it ends."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter, what: str):
        self.log, self.what = logger, what
        self.began: float | None = None
        self.failures = 0

    def failed(self, error: Exception) -> float:
        """Note a failed try; returns the seconds to wait before the next one."""
        self.failures += 1
        if self.began is None:
            self.began = time.monotonic()
            # A lost connection needs no traceback; anything else may be a bug: show it.
            self.log.warning(
                "%s failed: %s; retrying until the database answers",
                self.what,
                database_reason(error),
                exc_info=None if is_outage(error) else error,
            )
        return min(RETRY_FIRST_SECONDS * 2 ** min(self.failures - 1, 10), RETRY_MAX_SECONDS)

    def succeeded(self) -> None:
        if self.began is not None:
            self.log.info(
                "%s works again after %.1f s (%d failed tries)",
                self.what,
                time.monotonic() - self.began,
                self.failures,
            )
        self.began, self.failures = None, 0


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
                if claim is None:
                    waiter.wait()
                else:
                    waiter.pass_on()
                    JobRun(database, settings, claim, stop).run()
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
                self.outage.succeeded()
                if changed:
                    LEASE_EXPIRIES.inc(changed)
                    log.info("settled %d job(s) whose lease expired", changed)
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


class LeaseKeeper(threading.Thread):
    """Renews a job's lease every ``heartbeat_seconds``; ``lost`` and ``cancelling`` flags."""

    def __init__(self, database: Database, settings: Settings, claim: Claim, job_log: JobLog):
        super().__init__(name=f"lease-{claim.job_id}", daemon=True)
        self.database, self.settings, self.claim, self.log = database, settings, claim, job_log
        self.lost = threading.Event()  # another attempt owns the job: write nothing more
        self.cancelling = threading.Event()
        self.outage = Outage(job_log, "renewing the lease")
        self._done = threading.Event()

    def observe(self, status: str | None) -> None:
        """Take in a status a fenced write returned (None: the lease is gone)."""
        if status is None:
            if not self.lost.is_set():
                self.log.warning("lost the lease: another attempt owns the job; stopping")
            self.lost.set()
        elif status == CANCELLING and not self.cancelling.is_set():
            self.log.info("cancel requested; stopping after this epoch")
            self.cancelling.set()

    def run(self) -> None:
        while not self._done.wait(self.settings.heartbeat_seconds) and not self.lost.is_set():
            try:
                status = heartbeat(
                    database=self.database,
                    job_id=self.claim.job_id,
                    attempt=self.claim.attempt,
                    settings=self.settings,
                )
            except SQLAlchemyError as error:
                self.outage.failed(error)  # the next heartbeat is the retry
                continue
            self.outage.succeeded()
            self.observe(status)

    def finish(self) -> None:
        """Stop renewing (before the attempt's last write, which ends the lease anyway)."""
        self._done.set()
        if self.is_alive():
            self.join()


class JobRun:
    """One claimed job in this worker: loads the data, trains, and writes what it learns."""

    def __init__(self, database: Database, settings: Settings, claim: Claim, stop: threading.Event):
        self.database, self.settings, self.claim, self.stop = database, settings, claim, stop
        self.log = JobLog(claim)
        self.lease = LeaseKeeper(database, settings, claim, self.log)
        self.pending: list[EpochMetrics] = []  # epochs not yet written
        self.best_epoch: int | None = None
        self.elapsed = 0.0
        self.last_flush = self.last_checkpoint = time.monotonic()
        self.writes = Outage(self.log, "writing progress")
        self.retry_at = 0.0  # after a failed write, no other before this (monotonic)
        self.released = False  # stopped for SIGTERM: give the job back
        # How the attempt ended, for the job duration histogram: set when its end is
        # written; an attempt that could not write it was lost (to its lease, or an outage).
        self.outcome = LOST

    @property
    def fence(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "job_id": self.claim.job_id,
            "attempt": self.claim.attempt,
        }

    def run(self) -> None:
        """Train the job to its end; never raises (a failure is the job's, not the worker's)."""
        started = time.monotonic()
        self.lease.start()
        try:
            self._train()
        except DatabaseAway as error:  # not the job's failure
            self.log.warning("%s; the job is left to its lease", error)
        except JobError as error:
            self._fail(error.code, error.message)
        except ValueError as error:  # the engine refuses the data or specs (SpecError too)
            self._fail("training_error", str(error))
        except Exception as error:
            self.log.exception("unexpected error")
            summary = str(error).splitlines()[0][:300] if str(error) else ""
            self._fail(
                "worker_error", f"unexpected {type(error).__name__} in the worker: {summary}"
            )
        finally:
            self.lease.finish()
            JOB_DURATION.labels(self.outcome).observe(time.monotonic() - started)

    def _train(self) -> None:
        dataset, X, labels = self._load()
        model_spec = model_spec_from_dict(self.claim.model_spec)
        training_spec = TrainingSpec.from_dict(self.claim.training_spec)
        if self.stop.is_set() or self.lease.cancelling.is_set():
            self._release()  # nothing trained yet; the checkpoint (if any) is unchanged
            return
        self.log.info("training %s on %d rows x %d features", model_spec.type, *X.shape)
        result = fit(
            X,
            labels,
            model_spec,
            training_spec,
            feature_names=dataset.features,
            callback=self.on_epoch,
            resume_from=self.claim.checkpoint,
            overwrite_rows=True,  # X is ours alone: trained on in place, no second copy
        )
        if self.lease.lost.is_set():
            self.log.warning("stopped after epoch %d without writing more", len(result.history))
        elif self.released:
            self._retry(self._flush, "writing the last epochs")
            self.writes.succeeded()  # an outage met during training is over too
            if not self.lease.lost.is_set():
                self._release()
        else:
            self._complete(result)  # with the epochs not yet written

    def _load(self) -> tuple[Dataset, np.ndarray, np.ndarray]:
        return self._retry(self._read_dataset, "loading the dataset")

    def _read_dataset(self) -> tuple[Dataset, np.ndarray, np.ndarray]:
        missing = JobError("dataset_missing", "the job's dataset was deleted before it was trained")
        if self.claim.dataset_id is None:
            raise missing
        with self.database.reads() as session:
            dataset = session.get(Dataset, self.claim.dataset_id)
            if dataset is None:
                raise missing
            # Rows in the training dtype, read chunk by chunk (service.datasets.rows).
            X, y_index = load_rows(session, dataset, training_dtype(self.claim.training_spec))
        return dataset, X, labels_of(dataset, y_index)

    def _retry(self, action: Callable[[], T], what: str) -> T:
        """``action()``, tried again through a database outage for up to lease_seconds
        (then DatabaseAway); any other database error is raised at once."""
        outage = Outage(self.log, what)
        deadline = time.monotonic() + self.settings.lease_seconds
        while True:
            try:
                result = action()
            except SQLAlchemyError as error:
                if not is_outage(error):
                    raise
                wait = outage.failed(error)
                if time.monotonic() + wait > deadline:
                    reason = database_reason(error)
                    raise DatabaseAway(f"{what}: the database is unreachable ({reason})") from error
                time.sleep(wait)
            else:
                outage.succeeded()
                return result

    # -- the engine's callback, after every epoch --------------------------------------------
    def on_epoch(self, progress: Progress) -> bool:
        """Buffer, flush, checkpoint; True stops training (cancel, lost lease, SIGTERM)."""
        EPOCH_DURATION.observe(progress.metrics.seconds)
        self.pending.append(progress.metrics)
        self.best_epoch, self.elapsed = progress.best_epoch, progress.elapsed
        last = progress.stop_reason is not None
        now = time.monotonic()
        # The last epochs are written with the job's end (complete_job), in one transaction.
        if not last and now - self.last_flush >= self.settings.flush_seconds:
            self._flush_or_retry_later()
        if self.lease.lost.is_set() or self.lease.cancelling.is_set():
            return True
        if self.stop.is_set() and not last:
            # The checkpoint is taken here, before the engine records "cancelled" in its
            # state, so the next attempt resumes with the following epoch. The job is given
            # back even if the database refused it (the next attempt resumes from the last
            # checkpoint stored): completing it would record the engine's "cancelled".
            self._checkpoint(progress)
            self.released = True
            return True
        if not last and now - self.last_checkpoint >= self.settings.checkpoint_seconds:
            self._checkpoint(progress)
        return False

    def _flush(self) -> None:
        """Write the buffered epochs and the progress fields (one transaction)."""
        status = record_progress(
            **self.fence,
            epochs=self.pending,
            best_epoch=self.best_epoch,
            elapsed_seconds=self.elapsed,
            settings=self.settings,
        )
        self.lease.observe(status)
        self.pending = []  # written, or refused because another attempt owns the job
        self.last_flush = time.monotonic()

    def _flush_or_retry_later(self) -> bool:
        """Flush; on a database error keep the buffer for a later try. True if written."""
        if time.monotonic() < self.retry_at:
            return False  # the database failed a moment ago: wait out the backoff
        try:
            self._flush()
        except SQLAlchemyError as error:
            self.retry_at = time.monotonic() + self.writes.failed(error)
            return False
        self.writes.succeeded()
        return not self.lease.lost.is_set()

    def _checkpoint(self, progress: Progress) -> bool:
        """Store the state after this epoch, once the history reaches it. True if stored."""
        self.last_checkpoint = time.monotonic()
        if not self._flush_or_retry_later():
            return False
        try:
            stored = store_checkpoint(
                **self.fence, epoch=progress.epoch, data=progress.checkpoint()
            )
        except SQLAlchemyError as error:
            self.retry_at = time.monotonic() + self.writes.failed(error)
            return False
        self.lease.observe(stored or None)
        return stored

    # -- the end of the attempt --------------------------------------------------------------
    def _complete(self, result: FitResult) -> None:
        self._write_end(
            lambda: complete_job(
                **self.fence,
                result=result,
                epochs=self.pending,
                elapsed_seconds=self.elapsed,
                dataset_id=self.claim.dataset_id,
            ),
            f"finished: {result.stop_reason} after epoch {len(result.history)}",
            self._completed_state(result),
        )
        if self.outcome != LOST:
            self.pending = []
            self.writes.succeeded()  # an outage met during training is over too

    def _completed_state(self, result: FitResult) -> str:
        """The state complete_job gives the job (unless a cancel arrives after the last
        heartbeat, which it alone sees)."""
        if self.lease.cancelling.is_set() or result.stop_reason == "cancelled":
            return CANCELLED
        return FAILED if result.stop_reason == "diverged" else SUCCEEDED

    def _release(self) -> None:
        # A job being cancelled is cancelled by its release rather than queued again.
        outcome = CANCELLED if self.lease.cancelling.is_set() else RELEASED
        self._write_end(lambda: release_job(**self.fence), "released for another worker", outcome)

    def _fail(self, code: str, message: str) -> None:
        self.log.warning("failed (%s): %s", code, message)
        self._write_end(
            lambda: fail_job(**self.fence, error=message, code=code),
            "recorded the failure",
            FAILED,
        )

    def _write_end(self, write: Callable[[], bool], done: str, outcome: str) -> None:
        # A heartbeat after this write would find the job ended and report a lost lease.
        self.lease.finish()
        try:
            written = self._retry(write, "recording the end of the attempt")
        except DatabaseAway as error:
            self.log.warning("%s; the job's lease will expire", error)
            return
        except SQLAlchemyError:
            self.log.exception("could not record the end of the attempt; its lease will expire")
            return
        if written:
            self.outcome = outcome
            self.log.info(done)
        else:
            self.log.warning("the job is no longer this attempt's; wrote nothing")


def main() -> None:
    """`python -m service.queue.worker`: serve the queue with the settings from the environment."""
    settings = get_settings()
    configure_logging(settings)
    run_worker(settings)


if __name__ == "__main__":
    main()
