"""One job, claimed: its dataset loaded, the engine run with callbacks, its end written.

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

Failures of a job never stop the worker: a deleted dataset fails the job with
``error_code`` "dataset_missing" (a warm start's deleted parent model:
"parent_model_missing"), data or specs the engine refuses (ValueError)
with "training_error" and the engine's message, anything else with
"worker_error", its traceback going to the log only.
"""

import logging
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

import engine
from engine import Classifier, EpochMetrics, FitResult, ModelFileError, Progress, TrainingSpec, fit
from engine.specs import model_spec_from_dict
from service.core.database import Database
from service.core.metrics import (
    EPOCH_DURATION,
    JOB_DURATION,
    LOST,
    RELEASED,
)
from service.core.settings import Settings
from service.core.states import CANCELLED, CANCELLING, FAILED, SUCCEEDED
from service.core.tables import Dataset, Model
from service.datasets.input_columns import training_columns, with_left_out
from service.datasets.rows import load_rows, training_dtype
from service.datasets.storage import labels_of
from service.queue.claims import Claim, heartbeat, record_progress, store_checkpoint
from service.queue.outages import DatabaseAway, Outage, T, database_reason, is_outage
from service.queue.outcomes import complete_job, fail_job, release_job

log = logging.getLogger("service.queue.worker")  # one logger for the whole worker's lines


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
        parent = self._retry(self._read_parent, "loading the parent model")
        model_spec = model_spec_from_dict(self.claim.model_spec)
        training_spec = TrainingSpec.from_dict(self.claim.training_spec)
        if self.stop.is_set() or self.lease.cancelling.is_set():
            self._release()  # nothing trained yet; the checkpoint (if any) is unchanged
            return
        table = training_columns(dataset)
        if parent is None:  # a warm start's columns are the parent's (engine.warm)
            preprocessing = with_left_out(training_spec.preprocessing, table.left_out)
            training_spec = replace(training_spec, preprocessing=preprocessing)
        self.log.info("training %s on %d rows x %d columns", model_spec.type, *X.shape)
        result = fit(
            X,
            labels,
            model_spec,
            training_spec,
            columns=table.columns,
            callback=self.on_epoch,
            resume_from=self.claim.checkpoint,
            overwrite_rows=True,  # X is ours alone: trained on in place, no second copy
            evaluate=True,  # the model's metrics on its validation (or training) split
            warm_start=parent,
        )
        # Saved in the model's .npz: its label column, and its parent if fine-tuned.
        result.classifier.metadata = {"label": dataset.label, "parent_model_id": self.parent_id}
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

    @property
    def parent_id(self) -> str | None:
        """The model this job fine-tunes, as requested (None: fresh weights)."""
        return (self.claim.warm_start or {}).get("model_id")

    def _read_parent(self) -> Classifier | None:
        """The parent model's Classifier for a warm start; None without one. A parent
        deleted since the job was created fails the job ("parent_model_missing")."""
        if self.parent_id is None:
            return None
        missing = JobError(
            "parent_model_missing",
            f"the parent model {self.parent_id} was deleted before the job was trained",
        )
        if self.claim.parent_model_id is None:  # SET NULL: deleted before the claim
            raise missing
        with self.database.reads() as session:
            artifact = session.scalar(
                select(Model.artifact).where(Model.id == self.claim.parent_model_id)
            )
        if artifact is None:
            raise missing
        try:
            return engine.load(artifact)
        except ModelFileError as error:
            raise JobError(
                "parent_model_unreadable", f"the parent model's stored file: {error}"
            ) from error

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
