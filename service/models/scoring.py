"""Batch predictions and evaluations of a stored dataset: queued for workers, or (a small
evaluation) computed here.

POST checks what it can before anything is queued: the model (404), the dataset (422,
as every id in a body), its columns against the model's (service.datasets.blocks.ModelInput),
and for an evaluation its label column and classes. A worker then scores the task block by
block (service.queue.scoring). An evaluation of at most BACKPROP_INLINE_EVALUATION_ROWS
rows is computed in the request's thread instead: the same coding, the same
predict_proba, the same engine.metrics, so both paths give the same numbers.

A batch prediction's result streams from service.models.scoring_results.
"""

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from engine import classification_metrics
from service.core.audit import record
from service.core.database import Database
from service.core.errors import field_problem, not_found, unknown_reference
from service.core.settings import Settings
from service.core.tables import Dataset, ScoringTask, could_be_id
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
    record(session, f"{kind}.create", task.id, {"model_id": entry.id, "dataset_id": dataset.id})
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
