"""Batch predictions and evaluations of a stored dataset: queued for workers, or (a small
evaluation) computed here.

POST checks what it can before anything is queued: the model (404), the dataset (422,
as every id in a body), its columns against the model's (service.datasets.blocks.ModelInput),
and for an evaluation its label column and classes. A worker then scores the task block by
block (service.queue.scoring). An evaluation of at most BACKPROP_INLINE_EVALUATION_ROWS
rows is computed in the request's thread instead: the same coding, the same
predict_proba, the same engine.metrics, so both paths give the same numbers.

A batch prediction's result is read back one stored block at a time and written out as
CSV or Parquet as it goes (``result_chunks``): the API holds one block, never the result.
"""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import classification_metrics
from service.core.database import Database
from service.core.errors import Conflict, field_problem, not_found, unknown_reference
from service.core.settings import Settings
from service.core.states import SUCCEEDED
from service.core.tables import Dataset, ScoringBlock, ScoringTask, could_be_id
from service.datasets.blocks import ModelInput, class_index
from service.datasets.storage import load_arrays
from service.models.scoring_schemas import (
    BatchPredictionPublic,
    DatasetEvaluation,
    EvaluationTaskPublic,
    TaskLinks,
)
from service.models.service import LoadedModel, ModelCache, cached_model
from service.queue.notify import notify_job_queued
from service.queue.scoring import result_schema
from service.queue.scoring_claims import BATCH_PREDICTION, EVALUATION

PATHS = {BATCH_PREDICTION: "batch-predictions", EVALUATION: "evaluations"}
NAMES = {BATCH_PREDICTION: "batch prediction", EVALUATION: "evaluation"}
FORMATS = ("csv", "parquet")


def _checked(
    session: Session, entry: LoadedModel, dataset_id: str, kind: str
) -> tuple[Dataset, ModelInput]:
    """The dataset, after the checks a task of ``kind`` needs (422 naming dataset_id)."""
    dataset = session.get(Dataset, dataset_id) if could_be_id(dataset_id) else None
    if dataset is None:
        raise unknown_reference("dataset_id", "dataset", dataset_id)
    columns = ModelInput.of(entry.classifier, dataset)
    if kind == EVALUATION:
        if entry.label is not None and dataset.label != entry.label:
            raise field_problem(
                "dataset_id",
                f"dataset {dataset.id!r} is labelled by column {dataset.label!r}; the model "
                f"predicts {entry.label!r}",
            )
        class_index(entry.classifier, dataset)
    return dataset, columns


def _queue(
    session: Session, entry: LoadedModel, dataset: Dataset, kind: str, settings: Settings
) -> ScoringTask:
    task = ScoringTask(
        kind=kind,
        model_id=entry.id,
        dataset_id=dataset.id,
        rows_total=dataset.rows,
        rows_done=0,
        block_rows=settings.scoring_block_rows,
        max_attempts=settings.max_attempts,
    )
    session.add(task)
    session.flush()
    notify_job_queued(session)  # the workers that wait for jobs wait for these too
    return task


def create_batch_prediction(
    *, database: Database, cache: ModelCache, model_id: str, dataset_id: str, settings: Settings
) -> BatchPredictionPublic:
    """Queue a batch prediction of every row of the dataset."""
    entry = cached_model(database=database, cache=cache, model_id=model_id)
    with database.writes() as session, session.begin():
        dataset, _ = _checked(session, entry, dataset_id, BATCH_PREDICTION)
        task = _queue(session, entry, dataset, BATCH_PREDICTION, settings)
    return public_batch(task)


def create_evaluation(
    *, database: Database, cache: ModelCache, model_id: str, dataset_id: str, settings: Settings
) -> DatasetEvaluation | EvaluationTaskPublic:
    """The metrics at once (a dataset of at most inline_evaluation_rows rows), or a queued
    evaluation for a worker."""
    entry = cached_model(database=database, cache=cache, model_id=model_id)
    with database.reads() as session:
        dataset, columns = _checked(session, entry, dataset_id, EVALUATION)
        inline = dataset.rows <= settings.inline_evaluation_rows
        if inline:  # bounded by the setting: at most that many rows held here
            X, y_index = load_arrays(session, dataset)
    if inline:
        return _evaluate(entry, dataset, columns, X, y_index)
    # Written in the SQLite writer's turn, the checks again: the dataset may be gone since.
    with database.writes() as session, session.begin():
        dataset, _ = _checked(session, entry, dataset_id, EVALUATION)
        task = _queue(session, entry, dataset, EVALUATION, settings)
    return public_evaluation(task)


def _evaluate(
    entry: LoadedModel, dataset: Dataset, columns: ModelInput, X: np.ndarray, y_index: np.ndarray
) -> DatasetEvaluation:
    """engine.metrics of the model's predict_proba on the coded rows X (m, n_stored)."""
    classifier = entry.classifier
    with np.errstate(all="ignore"):
        probabilities = classifier.predict_proba(columns.code(X))  # (m, K)
    finite = np.isfinite(probabilities).all(axis=1)
    if not finite.all():
        raise field_problem(
            "dataset_id",
            f"the model's output is not finite for row {int(np.argmin(finite))} of dataset "
            f"{dataset.id!r}: its values lie far outside the range the model was trained on",
        )
    y = class_index(classifier, dataset)[y_index]  # (m,) the model's class indices
    report = classification_metrics(y, probabilities, classifier.classes)
    return DatasetEvaluation.model_validate(
        {"split": "dataset", **report, "model_id": entry.id, "dataset_id": dataset.id}
    )


def get_task(*, session: Session, model_id: str, task_id: str, kind: str) -> ScoringTask:
    """The model's task of ``kind``; 404 for an id that names none."""
    task = session.get(ScoringTask, task_id) if could_be_id(task_id) else None
    if task is None or task.model_id != model_id or task.kind != kind:
        raise not_found(NAMES[kind], task_id)
    return task


def _public_fields(task: ScoringTask) -> dict[str, Any]:
    path = f"/v1/models/{task.model_id}/{PATHS[task.kind]}/{task.id}"
    return {
        "id": task.id,
        "model_id": task.model_id,
        "dataset_id": task.dataset_id,
        "status": task.status,
        "rows_total": task.rows_total,
        "rows_done": task.rows_done,
        "progress": task.rows_done / task.rows_total if task.rows_total else 1.0,
        "error": task.error,
        "error_code": task.error_code,
        "attempts": task.attempt,
        "created_at": task.created_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "links": TaskLinks(
            self=path, result=f"{path}/result" if task.kind == BATCH_PREDICTION else None
        ),
    }


def public_batch(task: ScoringTask) -> BatchPredictionPublic:
    return BatchPredictionPublic(**_public_fields(task))


def public_evaluation(task: ScoringTask) -> EvaluationTaskPublic:
    evaluation = None
    if task.result is not None:
        evaluation = DatasetEvaluation.model_validate(
            {**task.result, "model_id": task.model_id, "dataset_id": task.dataset_id or ""}
        )
    return EvaluationTaskPublic(**_public_fields(task), evaluation=evaluation)


def result_chunks(
    *, database: Database, cache: ModelCache, model_id: str, batch_id: str, file_format: str
) -> Iterator[bytes]:
    """The result of a succeeded batch prediction as CSV or Parquet bytes, a stored block
    at a time. 404 for no such batch prediction, 409 while it has not succeeded. The checks
    run here, before the first chunk is asked for."""
    with database.reads() as session:
        task = get_task(session=session, model_id=model_id, task_id=batch_id, kind=BATCH_PREDICTION)
        if task.status != SUCCEEDED:
            raise Conflict(
                f"batch prediction {batch_id!r} is {task.status} ({task.rows_done} of "
                f"{task.rows_total} rows scored): its result downloads once it has succeeded",
            )
        blocks = session.scalar(
            select(ScoringBlock.index)
            .where(ScoringBlock.task_id == batch_id)
            .order_by(ScoringBlock.index.desc())
            .limit(1)
        )
    schema = result_schema(
        cached_model(database=database, cache=cache, model_id=model_id).classifier
    )
    count = 0 if blocks is None else blocks + 1
    tables = _stored_tables(database, batch_id, count)
    return _csv(tables, schema) if file_format == "csv" else _parquet(tables, schema)


def _stored_tables(database: Database, batch_id: str, count: int) -> Iterator[pa.Table]:
    """Each stored block, read in its own short session (nothing held between blocks)."""
    for index in range(count):
        with database.reads() as session:
            data = session.scalar(
                select(ScoringBlock.data).where(
                    ScoringBlock.task_id == batch_id, ScoringBlock.index == index
                )
            )
        yield pa.ipc.open_stream(data).read_all()


def _csv(tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[bytes]:
    yield (",".join(f'"{name}"' for name in schema.names) + "\n").encode()
    options = pa_csv.WriteOptions(include_header=False)
    for table in tables:
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, write_options=options)
        yield sink.getvalue().to_pybytes()


class _Drain:
    """A write-only file for ParquetWriter whose bytes are taken after each row group;
    ``tell`` counts every byte ever written (the footer's offsets need it)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.parts.append(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _parquet(tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[bytes]:
    drain = _Drain()
    writer = pq.ParquetWriter(pa.PythonFile(drain, mode="w"), schema)
    for table in tables:
        writer.write_table(table)  # one row group per stored block
        yield drain.take()
    writer.close()
    yield drain.take()
