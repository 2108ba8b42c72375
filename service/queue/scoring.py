"""One scoring task, claimed: a model scores a stored dataset block by block.

    batch_prediction: each block of ``block_rows`` rows -> its probabilities (b, K)
                      stored with the progress in one transaction
                      (service.queue.scoring_claims.store_block)
    evaluation:       each block's probabilities kept, then engine.metrics'
                      classification_metrics of them all, stored as the task's result

Memory. A batch prediction holds one block at a time: its stored rows (block_rows x n_x
float64), the coded rows, the probabilities (block_rows x K) and the block's bytes, so the
worker's peak does not grow with the dataset's rows. An evaluation also keeps what the
metrics need of every row, the probabilities (m x K float64) and the true classes (m
intp): 8 (K + 1) bytes a row (24 MB a million rows for two classes); the features are
never held beyond a block.

The probabilities are Classifier.predict_proba's of the model's coded rows: the model's
own prediction path, and a row's bits do not depend on its block (engine.invariant).

A lease keeper renews the lease every ``heartbeat_seconds`` while a block is scored (a
block of a wide network may take longer than the lease); each block's write renews it
too. A lost lease stops the task at the next block without writing; SIGTERM releases it
(queued again, its blocks kept); a failure the owner can act on (the dataset deleted or
unlike the model) fails it with a message, never the worker.
"""

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

import engine
from engine import Classifier, classification_metrics
from service.core.database import Database
from service.core.errors import ServiceError
from service.core.settings import Settings
from service.core.tables import Dataset, Model
from service.datasets.blocks import ModelInput, class_index, read_block
from service.datasets.readahead import give_back_memory
from service.queue.outages import Outage
from service.queue.scoring_claims import (
    BATCH_PREDICTION,
    TaskClaim,
    claim_task,
    complete_task,
    fail_task,
    record_rows,
    release_task,
    renew_task,
    store_block,
)

log = logging.getLogger("service.queue.worker")

BLOCK_DTYPE = np.dtype("<f8")
Block = tuple[int, int, np.ndarray, np.ndarray | None]  # start, end, X rows, y_index or None


class TaskError(Exception):
    """The task cannot be scored, for a reason its owner can act on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def encode_block(probabilities: np.ndarray) -> bytes:
    """A block's probabilities (b, K) as stored: float64 little-endian, row-major. The row
    numbers and labels follow from them and the block's place, so they are not stored:
    the API adds them as it streams the result (service.models.scoring_results)."""
    return np.ascontiguousarray(probabilities, dtype=BLOCK_DTYPE).tobytes()


def decode_block(data: bytes, classes: int) -> np.ndarray:
    """A stored block's probabilities (b, K), read-only (a view of ``data``)."""
    return np.frombuffer(data, dtype=BLOCK_DTYPE).reshape(-1, classes)


def claim_scoring(database: Database, worker_id: str, settings: Settings) -> TaskClaim | None:
    """The oldest queued scoring task, claimed; None when there is none or the database is
    away (the worker's job claims report outages; the next round retries)."""
    try:
        claim = claim_task(database=database, worker_id=worker_id, settings=settings)
    except SQLAlchemyError:
        return None
    if claim is not None:
        log.info(
            "scoring task %s attempt %d: claimed by %s", claim.task_id, claim.attempt, worker_id
        )
    return claim


class TaskLease(threading.Thread):
    """Renews a task's lease every ``heartbeat_seconds``; ``lost`` once it is gone."""

    def __init__(self, database: Database, settings: Settings, claim: TaskClaim):
        super().__init__(name=f"lease-{claim.task_id}", daemon=True)
        self.database, self.settings, self.claim = database, settings, claim
        self.lost = threading.Event()
        self.outage = Outage(log, "renewing a scoring task's lease")
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.settings.heartbeat_seconds) and not self.lost.is_set():
            try:
                held = renew_task(
                    database=self.database,
                    task_id=self.claim.task_id,
                    attempt=self.claim.attempt,
                    settings=self.settings,
                )
            except SQLAlchemyError as error:
                self.outage.failed(error)  # the next heartbeat is the retry
                continue
            self.outage.succeeded()
            if not held:
                self.lost.set()

    def finish(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join()


class TaskRun:
    """One claimed scoring task in this worker."""

    def __init__(
        self, database: Database, settings: Settings, claim: TaskClaim, stop: threading.Event
    ):
        self.database, self.settings, self.claim, self.stop = database, settings, claim, stop
        self.lease = TaskLease(database, settings, claim)
        self.prefix = f"scoring task {claim.task_id} attempt {claim.attempt}"

    @property
    def fence(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "task_id": self.claim.task_id,
            "attempt": self.claim.attempt,
        }

    def run(self) -> None:
        """Score the task to its end; never raises (a failure is the task's, not the worker's)."""
        self.lease.start()
        try:
            self._score()
        except SQLAlchemyError as error:  # not the task's failure: its lease will tell
            log.warning("%s: database error (%s); left to its lease", self.prefix, error)
        except TaskError as error:
            fail_task(**self.fence, error=error.message, code=error.code)
        except (ValueError, ServiceError) as error:
            fail_task(**self.fence, error=str(error), code="scoring_error")
        except Exception as error:
            log.exception("%s: unexpected error", self.prefix)
            summary = str(error).splitlines()[0][:300] if str(error) else ""
            message = f"unexpected {type(error).__name__} in the worker: {summary}"
            fail_task(**self.fence, error=message, code="worker_error")
        finally:
            self.lease.finish()
            # Blocks were allocated and freed by three threads, whose glibc arenas keep what
            # they freed: hand it back, so an idle worker (and its next task) starts low.
            give_back_memory()

    def _load(self) -> tuple[Classifier, Dataset]:
        with self.database.reads() as session:
            artifact = session.scalar(select(Model.artifact).where(Model.id == self.claim.model_id))
            dataset = session.get(Dataset, self.claim.dataset_id) if self.claim.dataset_id else None
        if artifact is None:
            raise TaskError("model_missing", f"model {self.claim.model_id!r} was deleted")
        if dataset is None:
            raise TaskError("dataset_missing", "the task's dataset was deleted")
        return engine.load(artifact), dataset

    def _score(self) -> None:
        classifier, dataset = self._load()
        try:
            columns = ModelInput.of(classifier, dataset)
            classes = (
                class_index(classifier, dataset) if self.claim.kind != BATCH_PREDICTION else None
            )
        except ServiceError as error:
            raise TaskError("dataset_mismatch", error.detail) from None
        log.info("%s: %s of %d rows", self.prefix, self.claim.kind, self.claim.rows_total)
        if classes is None:
            self._predict(classifier, dataset, columns)
        else:
            self._evaluate(classifier, dataset, columns, classes)

    def _blocks(self, start: int) -> Iterator[tuple[int, int]]:
        """(start, end) of each block from ``start``; stops early on SIGTERM or a lost lease."""
        m, size = self.claim.rows_total, self.claim.block_rows
        for begin in range(start, m, size):
            if self.stop.is_set() or self.lease.lost.is_set():
                return
            yield begin, min(begin + size, m)

    def _stopped(self) -> bool:
        """After the blocks: True when the task must end here without completing."""
        if self.lease.lost.is_set():
            log.warning("%s: lost the lease; another attempt owns the task", self.prefix)
            return True
        if self.stop.is_set():
            release_task(**self.fence)
            log.info("%s: released (stopping)", self.prefix)
            return True
        return False

    def _read_ahead(self, dataset: Dataset, start: int, labels: bool) -> Iterator[Block]:
        """(start, end, X (b, n_stored), y_index (b,) or None) of each block from ``start``,
        the next block read by a helper thread while this one is scored (the database's
        read and the arithmetic overlap; two blocks are held at most)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as reader:
            pending = None
            for begin, end in self._blocks(start):
                ahead = reader.submit(self._read, dataset, begin, end, labels)
                if pending is not None:
                    yield pending.result()
                pending = ahead
            if pending is not None and not (self.stop.is_set() or self.lease.lost.is_set()):
                yield pending.result()

    def _read(self, dataset: Dataset, start: int, end: int, labels: bool) -> Block:
        with self.database.reads() as session:
            X = read_block(session, dataset, "X", start, end)  # (b, n_stored)
            y = read_block(session, dataset, "y", start, end) if labels else None  # (b,)
        return start, end, X, y

    @staticmethod
    def _probabilities(classifier: Classifier, columns: ModelInput, X: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return classifier.predict_proba(columns.code(X))  # (b, K)

    def _predict(self, classifier: Classifier, dataset: Dataset, columns: ModelInput) -> None:
        size = self.claim.block_rows
        # A helper thread writes each block while the next is scored, one write in flight
        # at a time: the blocks go out in order, each fenced, and one block's bytes wait.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-behind") as writer:
            writing = None
            for start, end, X, _ in self._read_ahead(dataset, self.claim.rows_done, labels=False):
                data = encode_block(self._probabilities(classifier, columns, X))
                if writing is not None:
                    self._written(writing)
                writing = writer.submit(self._store, start // size, end - start, data)
            if writing is not None:
                self._written(writing)
        if not self._stopped():
            complete_task(**self.fence, result=None)
            log.info("%s: succeeded", self.prefix)

    def _store(self, index: int, rows: int, data: bytes) -> bool:
        return store_block(**self.fence, index=index, rows=rows, data=data, settings=self.settings)

    def _written(self, writing: Future[bool]) -> None:
        """Wait for a block's write (its errors raise here); a fenced-out write means the
        lease is lost: the blocks after it are not scored."""
        if not writing.result():
            self.lease.lost.set()

    def _evaluate(
        self, classifier: Classifier, dataset: Dataset, columns: ModelInput, classes: np.ndarray
    ) -> None:
        m, K = self.claim.rows_total, len(classifier.classes)
        probabilities = np.empty((m, K), dtype=np.float64)  # kept for AUC and the curves
        y = np.empty(m, dtype=np.intp)  # the model's class index of each row
        for start, end, X, y_index in self._read_ahead(dataset, 0, labels=True):
            probabilities[start:end] = self._probabilities(classifier, columns, X)
            y[start:end] = classes[y_index]
            if not record_rows(**self.fence, rows_done=end, settings=self.settings):
                self.lease.lost.set()
        if self._stopped():
            return
        if not np.isfinite(probabilities).all():
            row = int(np.argmin(np.isfinite(probabilities).all(axis=1)))
            raise TaskError(
                "scoring_error",
                f"the model's output is not finite for row {row}: its values lie far outside "
                "the range the model was trained on",
            )
        report = classification_metrics(y, probabilities, classifier.classes)
        complete_task(**self.fence, result={"split": "dataset", **report})
        log.info("%s: succeeded", self.prefix)
