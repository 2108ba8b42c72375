"""Fitted models: reading them, a per-process cache of loaded classifiers, and predictions.

Models never change once written, so a model loaded from its .npz stays good
for the life of the process: the cache keeps the engine Classifier together
with the row's summary, and after the first request a prediction makes no
database round trip at all. (Rows are only ever removed with their job; a
process that cached such a model keeps answering for it until the LRU evicts it.)
"""

import csv
import io
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import false, select
from sqlalchemy.orm import Session, defer

import engine
from engine import Classifier, ModelFileError
from service.core.database import Database
from service.core.errors import (
    PayloadTooLarge,
    ServiceError,
    Unprocessable,
    field_problem,
    not_found,
    unknown_reference,
)
from service.core.pagination import page
from service.core.tables import Dataset, JobHistory, Model, could_be_id
from service.datasets.storage import labels_of, load_arrays
from service.models.label_column import label_message
from service.models.schemas import (
    ModelDiagnostics,
    ModelLinks,
    ModelMetrics,
    ModelPublic,
    Prediction,
    PredictionRequest,
    PredictionResponse,
)
from service.queue.results import finite_or_none

CACHE_SIZE = 32  # loaded classifiers kept per process
CSV_ROWS = 8192  # dataset rows predicted and written per streamed chunk
MAX_LISTED_ERRORS = 10  # records reported in one 422


@dataclass(frozen=True)
class LoadedModel:
    """A Model row's summary and its engine Classifier, loaded once from the artifact."""

    id: str
    job_id: str
    dataset_id: str | None
    model_type: str
    metrics: dict[str, Any]
    diagnostics: dict[str, Any]
    created_at: datetime
    classifier: Classifier
    label: str | None = None  # the dataset's label column; None once the dataset is deleted

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
            diagnostics=dict(row.diagnostics or {}),
            created_at=row.created_at,
            classifier=classifier,
            label=session.scalar(select(Dataset.label).where(Dataset.id == row.dataset_id))
            if row.dataset_id is not None
            else None,
        )


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

    def __len__(self) -> int:
        return len(self._entries)


def get_model(*, session: Session, cache: ModelCache, model_id: str) -> LoadedModel:
    """The model ``model_id``, from the cache or loaded (and cached); NotFound otherwise."""
    entry = cache.get(model_id)
    if entry is not None:
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


def public_model(entry: LoadedModel, *, include_parameters: bool = True) -> ModelPublic:
    """The JSON view of a model; parameters as nested lists in the engine's (note's) shapes."""
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
        metrics=ModelMetrics.model_validate(finite_or_none(entry.metrics)),
        diagnostics=ModelDiagnostics.model_validate(finite_or_none(entry.diagnostics)),
        parameters=parameter_lists(classifier) if include_parameters else None,
        parameter_shapes={name: list(shape) for name, shape in parameters.shapes.items()},
        dtype=str(parameters.dtype),
        created_at=entry.created_at,
        links=ModelLinks(
            self=f"/v1/models/{entry.id}",
            download=f"/v1/models/{entry.id}/download",
            predictions=f"/v1/models/{entry.id}/predictions",
            job=f"/v1/jobs/{entry.job_id}",
            dataset=f"/v1/datasets/{entry.dataset_id}" if entry.dataset_id else None,
        ),
    )


def parameter_lists(classifier: Classifier) -> dict[str, list[Any]]:
    """Each parameter as nested lists; a non-finite entry (never expected) becomes null."""
    lists = classifier.parameters_as_lists()
    if all(np.isfinite(array).all() for array in classifier.model.parameters.values()):
        return lists
    return finite_or_none(lists)


def cached_model(*, database: Database, cache: ModelCache, model_id: str) -> LoadedModel:
    """The model from the cache, or from the database (a read session only on a miss)."""
    entry = cache.get(model_id)
    if entry is not None:
        return entry
    with database.reads() as session:
        return get_model(session=session, cache=cache, model_id=model_id)


def predict(
    *,
    database: Database,
    cache: ModelCache,
    model_id: str,
    request: PredictionRequest,
    max_rows: int,
) -> PredictionResponse:
    """Labels and class probabilities for the request's rows or records; after a model's
    first prediction, no database round trip."""
    entry = cached_model(database=database, cache=cache, model_id=model_id)
    classifier = entry.classifier
    if request.rows is not None and request.records is None and request.dataset_id is None:
        X = _matrix_of_rows(request.rows, classifier, max_rows, entry.label)
    elif request.records is not None and request.rows is None and request.dataset_id is None:
        X = _matrix_of_records(request.records, classifier, max_rows, entry.label)
    else:
        raise _one_input_required(request)
    probabilities = _probabilities(classifier, X, field="rows" if request.rows else "records")
    labels = classifier.encoder.inverse_transform(probabilities.argmax(axis=1)).tolist()
    keys = [str(c) for c in classifier.classes]
    return PredictionResponse(
        model_id=entry.id,
        classes=classifier.classes,
        predictions=[
            Prediction(label=label, probabilities=dict(zip(keys, p, strict=True)))
            for label, p in zip(labels, probabilities.tolist(), strict=True)
        ],
    )


def predict_dataset(
    *, database: Database, cache: ModelCache, model_id: str, dataset_id: str
) -> Iterator[str]:
    """CSV text chunks: row, label (true), predicted, p_<class>... for every dataset row.

    The dataset is read here, before the first chunk; the chunks only compute.
    """
    classifier = cached_model(database=database, cache=cache, model_id=model_id).classifier
    with database.reads() as session:
        dataset = session.get(Dataset, dataset_id) if could_be_id(dataset_id) else None
        if dataset is None:
            raise unknown_reference("dataset_id", "dataset", dataset_id)
        columns = _feature_columns(classifier.feature_names, list(dataset.features), dataset_id)
        X, y_index = load_arrays(session, dataset)
        truth = labels_of(dataset, y_index)
    if columns is not None:
        X = X[:, columns]
    return _csv_chunks(classifier, X, truth)


def _csv_chunks(classifier: Classifier, X: np.ndarray, truth: np.ndarray) -> Iterator[str]:
    """The CSV, CSV_ROWS rows per chunk, so a large dataset never becomes one string."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "label", "predicted", *(f"p_{c}" for c in classifier.classes)])
    for start in range(0, X.shape[0], CSV_ROWS):
        with np.errstate(all="ignore"):
            probabilities = classifier.predict_proba(X[start : start + CSV_ROWS])
        finite = np.isfinite(probabilities).all(axis=1).tolist()
        predicted = classifier.encoder.inverse_transform(probabilities.argmax(axis=1)).tolist()
        labels = truth[start : start + CSV_ROWS].tolist()
        for offset, p in enumerate(probabilities.tolist()):
            if finite[offset]:
                writer.writerow([start + offset, labels[offset], predicted[offset], *p])
            else:  # values far outside the training range overflowed: empty cells, not "nan"
                writer.writerow([start + offset, labels[offset], "", *([""] * len(p))])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if X.shape[0] == 0:  # only the header
        yield buffer.getvalue()


def _feature_columns(model_names: list[str], dataset_names: list[str], dataset_id: str):
    """Column indices putting the dataset's features in the model's order; None if already so."""
    if model_names == dataset_names:
        return None
    missing = [name for name in model_names if name not in dataset_names]
    unexpected = [name for name in dataset_names if name not in model_names]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"lacks the model's features {missing}")
        if unexpected:
            parts.append(f"has features the model was not trained on {unexpected}")
        raise field_problem("dataset_id", f"dataset {dataset_id!r} " + " and ".join(parts))
    position = {name: index for index, name in enumerate(dataset_names)}
    return [position[name] for name in model_names]


def _one_input_required(request: PredictionRequest) -> Unprocessable:
    given = [
        name for name in ("rows", "records", "dataset_id") if getattr(request, name) is not None
    ]
    if given:
        return field_problem(
            "body", f"give exactly one of rows, records or dataset_id, not {' and '.join(given)}"
        )
    return field_problem("body", "give exactly one of rows, records or dataset_id")


def _check_count(count: int, field: str, max_rows: int) -> None:
    if count == 0:
        raise field_problem(field, "empty; give at least one row")
    if count > max_rows:
        raise PayloadTooLarge(
            f"{field} holds {count} rows; at most {max_rows} rows per request "
            f"(BACKPROP_MAX_PREDICTION_ROWS): split the request, or predict a stored "
            f"dataset with dataset_id",
            limit=max_rows,
            setting="max_prediction_rows",
        )


def _matrix_of_rows(
    rows: list[list[float]], classifier: Classifier, max_rows: int, label: str | None
) -> np.ndarray:
    _check_count(len(rows), "rows", max_rows)
    n_x = classifier.n_features
    wrong = [index for index, row in enumerate(rows) if len(row) != n_x]
    if wrong:
        # One value too many, and the model knows its label column: a whole CSV row.
        hint = f" (if one is {label!r}, the label column: drop it)" if label is not None else ""
        errors = [
            {
                "field": f"rows.{i}",
                "message": f"has {len(rows[i])} values; expected {n_x}"
                + (hint if len(rows[i]) == n_x + 1 else ""),
            }
            for i in wrong[:MAX_LISTED_ERRORS]
        ]
        first = errors[0]
        raise Unprocessable(
            f"{first['field']}: {first['message']}; the model's features, in order: "
            f"{classifier.feature_names}",
            errors=errors,
        )
    return np.array(rows, dtype=np.float64).reshape(len(rows), n_x)


def _matrix_of_records(
    records: list[dict[str, float]], classifier: Classifier, max_rows: int, label: str | None
) -> np.ndarray:
    _check_count(len(records), "records", max_rows)
    names = classifier.feature_names
    expected = set(names)
    errors = []
    for index, record in enumerate(records):
        if record.keys() == expected:
            continue
        missing = [name for name in names if name not in record]
        unknown = [name for name in record if name not in expected and name != label]
        if label is not None and label in record:
            errors.append({"field": f"records.{index}.{label}", "message": label_message(label)})
        reasons = []
        if missing:
            reasons.append(f"missing features {missing}")
        if unknown:
            reasons.append(f"unknown features {unknown}")
        if reasons:
            errors.append({"field": f"records.{index}", "message": "; ".join(reasons)})
        if len(errors) >= MAX_LISTED_ERRORS:
            errors = errors[:MAX_LISTED_ERRORS]
            break
    if errors:
        first = errors[0]
        raise Unprocessable(f"{first['field']}: {first['message']}", errors=errors)
    return np.array([[record[name] for name in names] for record in records], dtype=np.float64)


def _probabilities(classifier: Classifier, X: np.ndarray, field: str) -> np.ndarray:
    """predict_proba, refusing rows so extreme that the network's arithmetic overflows."""
    with np.errstate(all="ignore"):
        probabilities = classifier.predict_proba(X)
    finite = np.isfinite(probabilities).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise field_problem(
            f"{field}.{row}",
            "the model's output is not finite for these values; they lie far "
            "outside the range the model was trained on",
        )
    return probabilities
