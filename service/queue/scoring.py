"""One scoring task, claimed: a model scores a stored dataset block by block.

    batch_prediction: each block of ``block_rows`` rows -> an Arrow IPC block
                      (row, label, p_<class>...) stored with the progress in one
                      transaction (service.queue.scoring_claims.store_block)
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
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

import engine
from engine import Classifier, classification_metrics
from service.core.database import Database
from service.core.errors import ServiceError
from service.core.settings import Settings
from service.core.tables import Dataset, Model
from service.datasets.blocks import ModelInput, class_index, read_block
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


class TaskError(Exception):
    """The task cannot be scored, for a reason its owner can act on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def result_schema(classifier: Classifier) -> pa.Schema:
    """A batch prediction's columns: row (the dataset's 0-based row), label (predicted, in
    the dataset's own values), then p_<class> for each class in ``classes`` order."""
    label_type = pa.array(classifier.classes).type
    fields = [pa.field("row", pa.int64()), pa.field("label", label_type)]
    fields += [pa.field(f"p_{c}", pa.float64()) for c in classifier.classes]
    return pa.schema(fields)


def result_block(
    classifier: Classifier, schema: pa.Schema, start: int, probabilities: np.ndarray
) -> bytes:
    """Rows start.. with their probabilities (b, K) as an Arrow IPC stream. A row whose
    probabilities overflowed (values far outside the training range) gets nulls."""
    b = probabilities.shape[0]
    bad = ~np.isfinite(probabilities).all(axis=1)  # (b,)
    labels = classifier.encoder.inverse_transform(probabilities.argmax(axis=1))
    arrays = [
        pa.array(np.arange(start, start + b, dtype=np.int64)),
        pa.array(labels, type=schema.field("label").type, mask=bad),
    ]
    arrays += [pa.array(probabilities[:, k], mask=bad) for k in range(probabilities.shape[1])]
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


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

    def _blocks(self, start: int) -> Any:
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

    def _probabilities(
        self, classifier: Classifier, dataset: Dataset, columns: ModelInput, start: int, end: int
    ) -> np.ndarray:
        with self.database.reads() as session:
            X = read_block(session, dataset, "X", start, end)  # (b, n_stored)
        with np.errstate(all="ignore"):
            return classifier.predict_proba(columns.code(X))  # (b, K)

    def _predict(self, classifier: Classifier, dataset: Dataset, columns: ModelInput) -> None:
        schema = result_schema(classifier)
        size = self.claim.block_rows
        for start, end in self._blocks(self.claim.rows_done):
            probabilities = self._probabilities(classifier, dataset, columns, start, end)
            data = result_block(classifier, schema, start, probabilities)
            stored = store_block(
                **self.fence,
                index=start // size,
                rows=end - start,
                data=data,
                settings=self.settings,
            )
            if not stored:
                self.lease.lost.set()
        if not self._stopped():
            complete_task(**self.fence, result=None)
            log.info("%s: succeeded", self.prefix)

    def _evaluate(
        self, classifier: Classifier, dataset: Dataset, columns: ModelInput, classes: np.ndarray
    ) -> None:
        m, K = self.claim.rows_total, len(classifier.classes)
        probabilities = np.empty((m, K), dtype=np.float64)  # kept for AUC and the curves
        y = np.empty(m, dtype=np.intp)  # the model's class index of each row
        for start, end in self._blocks(0):
            probabilities[start:end] = self._probabilities(classifier, dataset, columns, start, end)
            with self.database.reads() as session:
                y[start:end] = classes[read_block(session, dataset, "y", start, end)]
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
