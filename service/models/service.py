"""Fitted models: reading them and a per-process cache of loaded classifiers (predictions:
service.models.predictions).

Models never change once written, so a model loaded from its .npz stays good
for the life of the process: the cache keeps the engine Classifier together
with the row's summary. A model may be deleted, though (DELETE /v1/models/{id} or
of its job), through any API process: so a cached model is served only after one
primary-key read confirms its row is still there (service.core.point_reads: microseconds
on SQLite, one awaited round trip on PostgreSQL), and a model found gone is dropped from
the cache and answered 404. Its cost is measured in benchmarks/README.md ("alias").
"""

import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request
from sqlalchemy import bindparam, false, select
from sqlalchemy.orm import Session, defer

import engine
from engine import Classifier, ModelFileError
from service.core.database import Database
from service.core.errors import (
    NotFound,
    ServiceError,
    not_found,
)
from service.core.json_values import finite_or_none
from service.core.pagination import page
from service.core.tables import Dataset, Job, JobHistory, Model, could_be_id
from service.core.tenancy import request_project
from service.models.evaluation_schemas import ModelEvaluation
from service.models.schemas import (
    ModelDiagnostics,
    ModelLinks,
    ModelMetrics,
    ModelPublic,
)

CACHE_SIZE = 32  # loaded classifiers kept per process


@dataclass(frozen=True)
class LoadedModel:
    """A Model row's summary and its engine Classifier, loaded once from the artifact."""

    id: str
    job_id: str
    dataset_id: str | None
    model_type: str
    metrics: dict[str, Any]
    evaluation: dict[str, Any] | None  # None for models from before migration 0007
    diagnostics: dict[str, Any]
    created_at: datetime
    classifier: Classifier
    label: str | None = None  # the dataset's label column; None once the dataset is deleted
    lineage: tuple[str, ...] = ()  # ancestors, parent first (warm starts); () for none

    @classmethod
    def from_row(cls, session: Session, row: Model) -> "LoadedModel":
        try:
            classifier = engine.load(row.artifact)
        except ModelFileError as error:
            # Stored by a worker, not sent by this client: a server-side fault, said plainly.
            raise ServiceError(f"model {row.id}'s stored file cannot be loaded: {error}") from error
        return cls(
            id=row.id,
            job_id=row.job_id,
            dataset_id=row.dataset_id,
            model_type=row.model_type,
            metrics=_with_final_accuracies(session, row),
            evaluation=row.evaluation,
            diagnostics=dict(row.diagnostics or {}),
            created_at=row.created_at,
            classifier=classifier,
            label=session.scalar(select(Dataset.label).where(Dataset.id == row.dataset_id))
            if row.dataset_id is not None
            else None,
            lineage=lineage(session, row.job_id),
        )


MAX_LINEAGE = 100  # ancestors listed at most: a guard, as a chain never loops


def lineage(session: Session, job_id: str) -> tuple[str, ...]:
    """The ancestors of the model made by ``job_id``, parent first: each step reads the
    parent its job fine-tuned (jobs.parent_model_id), one indexed lookup per generation."""
    chain: list[str] = []
    parent = session.scalar(select(Job.parent_model_id).where(Job.id == job_id))
    of_model = select(Job.parent_model_id).join(Model, Model.job_id == Job.id)
    while parent is not None and parent not in chain and len(chain) < MAX_LINEAGE:
        chain.append(parent)
        parent = session.scalar(of_model.where(Model.id == parent))
    return tuple(chain)


def _with_final_accuracies(session: Session, row: Model) -> dict[str, Any]:
    """The row's metrics, plus the last epoch's accuracies from the job's history.

    fit_metrics stores final losses but not final accuracies; the last history
    row holds both (read once per process: the result is cached with the model).
    """
    metrics = dict(row.metrics or {})
    if "final_train_accuracy" in metrics and "final_val_accuracy" in metrics:
        return metrics
    last = session.execute(
        select(JobHistory.train_accuracy, JobHistory.val_accuracy)
        .where(JobHistory.job_id == row.job_id)
        .order_by(JobHistory.epoch.desc())
        .limit(1)
    ).first()
    if last is not None:
        metrics.setdefault("final_train_accuracy", last.train_accuracy)
        metrics.setdefault("final_val_accuracy", last.val_accuracy)
    return metrics


class ModelCache:
    """An LRU of LoadedModel by id, safe to share between the threadpool's threads."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._entries: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str) -> LoadedModel | None:
        with self._lock:
            entry = self._entries.get(model_id)
            if entry is not None:
                self._entries.move_to_end(model_id)
            return entry

    def put(self, entry: LoadedModel) -> None:
        with self._lock:
            self._entries[entry.id] = entry
            self._entries.move_to_end(entry.id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def discard(self, model_id: str) -> None:
        """Forget ``model_id`` (deleted): the next request looks it up again."""
        with self._lock:
            self._entries.pop(model_id, None)

    def __len__(self) -> int:
        return len(self._entries)


async def get_model_cache(request: Request) -> ModelCache:
    """The application's model cache, created on first use (one per app, so per process).

    async def: it runs on the event loop, one request at a time, so creating the cache
    needs no lock, and a prediction costs no thread hop for it.
    """
    state = request.app.state
    cache = getattr(state, "model_cache", None)
    if cache is None:
        cache = state.model_cache = ModelCache()
    return cache


ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]

# The check that a cached model was not deleted since it was loaded (by any API process).
_STORED = select(Model.id).where(Model.id == bindparam("model_id"))
# The same, for service.core.point_reads: raw SQL names the request's project itself.
STORED_SQL = "SELECT 1 FROM models WHERE id = ? AND project = ?"


def _gone(cache: ModelCache, entry: LoadedModel) -> NotFound:
    cache.discard(entry.id)
    return not_found("model", entry.id)


async def confirm_stored(*, database: Database, cache: ModelCache, entry: LoadedModel) -> None:
    """On the event loop: NotFound, and ``entry`` dropped from the cache, if its row is gone."""
    if await database.point_reads.one_async(STORED_SQL, (entry.id, request_project())) is None:
        raise _gone(cache, entry)


def get_model(*, session: Session, cache: ModelCache, model_id: str) -> LoadedModel:
    """The model ``model_id``, from the cache or loaded (and cached); NotFound otherwise."""
    entry = cache.get(model_id)
    if entry is not None:
        if session.scalar(_STORED, {"model_id": model_id}) is None:
            raise _gone(cache, entry)
        return entry
    # An id no row can have is not looked up (PostgreSQL refuses NUL in text: a 500).
    row = session.get(Model, model_id) if could_be_id(model_id) else None
    if row is None:
        raise not_found("model", model_id)
    # Two threads may load the same model at once; both results are identical, one stays.
    entry = LoadedModel.from_row(session, row)
    cache.put(entry)
    return entry


def list_models(
    *,
    session: Session,
    cache: ModelCache,
    limit: int,
    cursor: str | None = None,
    dataset_id: str | None = None,
    job_id: str | None = None,
    model_type: str | None = None,
) -> tuple[list[LoadedModel], str | None]:
    """One page of models, newest first, filtered before the limit; and the next cursor."""
    # The artifact is fetched only for models the cache does not hold yet.
    statement = select(Model).options(defer(Model.artifact))
    # An id no row can have matches no model (and never reaches PostgreSQL with a NUL).
    if dataset_id is not None:
        statement = statement.where(
            Model.dataset_id == dataset_id if could_be_id(dataset_id) else false()
        )
    if job_id is not None:
        statement = statement.where(Model.job_id == job_id if could_be_id(job_id) else false())
    if model_type is not None:
        statement = statement.where(Model.model_type == model_type)
    rows, next_cursor = page(session, statement, Model, limit, cursor)
    entries = []
    for row in rows:
        entry = cache.get(row.id)
        if entry is None:
            entry = LoadedModel.from_row(session, row)  # row.artifact loads on first access
            cache.put(entry)
        entries.append(entry)
    return entries, next_cursor


def model_artifact(*, session: Session, model_id: str) -> bytes:
    """The engine's portable .npz of a model, as stored."""
    artifact = None
    if could_be_id(model_id):
        artifact = session.scalar(select(Model.artifact).where(Model.id == model_id))
    if artifact is None:
        raise not_found("model", model_id)
    return artifact


def public_model(
    entry: LoadedModel, *, include_parameters: bool = True, curves: bool = True
) -> ModelPublic:
    """The JSON view of a model; parameters as nested lists in the engine's (note's) shapes.
    ``curves=False`` (listings) leaves the evaluation's ROC and calibration curves out."""
    classifier = entry.classifier
    parameters = classifier.model.parameters
    return ModelPublic(
        id=entry.id,
        job_id=entry.job_id,
        dataset_id=entry.dataset_id,
        type=entry.model_type,
        model=asdict(classifier.model_spec),
        training=finite_or_none(classifier.training_spec.to_dict()),
        classes=classifier.classes,
        feature_names=classifier.feature_names,
        n_features=classifier.n_features,
        columns=classifier.transform.describe(),
        ignored_columns=list(classifier.transform.ignored),
        metrics=ModelMetrics.model_validate(finite_or_none(entry.metrics)),
        evaluation=public_evaluation(entry.evaluation, curves=curves),
        diagnostics=ModelDiagnostics.model_validate(finite_or_none(entry.diagnostics)),
        parameters=parameter_lists(classifier) if include_parameters else None,
        parameter_shapes={name: list(shape) for name, shape in parameters.shapes.items()},
        dtype=str(parameters.dtype),
        created_at=entry.created_at,
        parent_model_id=entry.lineage[0] if entry.lineage else None,
        lineage=list(entry.lineage),
        links=ModelLinks(
            self=f"/v1/models/{entry.id}",
            download=f"/v1/models/{entry.id}/download",
            predictions=f"/v1/models/{entry.id}/predictions",
            job=f"/v1/jobs/{entry.job_id}",
            dataset=f"/v1/datasets/{entry.dataset_id}" if entry.dataset_id else None,
            parent=f"/v1/models/{entry.lineage[0]}" if entry.lineage else None,
        ),
    )


def public_evaluation(report: dict[str, Any] | None, *, curves: bool) -> ModelEvaluation | None:
    """The stored evaluation report, typed; without its curves (``curves=False``: listings)."""
    if report is None:
        return None
    if not curves:
        report = {**report, "roc_curve": None, "calibration": None}
    return ModelEvaluation.model_validate(report)


def parameter_lists(classifier: Classifier) -> dict[str, list[Any]]:
    """Each parameter as nested lists; a non-finite entry (never expected) becomes null."""
    lists = classifier.parameters_as_lists()
    if all(np.isfinite(array).all() for array in classifier.model.parameters.values()):
        return lists
    return finite_or_none(lists)


def cached_model(*, database: Database, cache: ModelCache, model_id: str) -> LoadedModel:
    """The model from the cache once its row is confirmed (one point read), or from the
    database (a read session on a miss)."""
    entry = cache.get(model_id)
    if entry is not None:
        if database.point_reads.one(STORED_SQL, (model_id, request_project())) is None:
            raise _gone(cache, entry)
        return entry
    with database.reads() as session:
        return get_model(session=session, cache=cache, model_id=model_id)
