"""Predictions: rows, records or a stored dataset in, labels and class probabilities out.

The model comes from the per-process cache (service.models.service.cached_model); its
classifier computes every row alone (engine.invariant), so a row gets the same bits
whatever it is sent with.
"""

import csv
import io
from collections.abc import Iterator

import numpy as np

from engine import Classifier, InputColumn, RecordError, recode
from service.core.database import Database
from service.core.errors import (
    PayloadTooLarge,
    Unprocessable,
    field_problem,
    unknown_reference,
)
from service.core.tables import Dataset, could_be_id
from service.datasets.input_columns import training_columns
from service.datasets.storage import labels_of, load_arrays
from service.models.label_column import label_message
from service.models.schemas import (
    Cell,
    Prediction,
    PredictionRequest,
    PredictionResponse,
)
from service.models.service import LoadedModel, ModelCache, cached_model

CSV_ROWS = 8192  # dataset rows predicted and written per streamed chunk

# Predictions of at most this many rows by a cached model run on the event loop (the routes
# of service.models and service.registry): ~20 us of NumPy and pydantic for one row, ~55 us
# for 32, against ~45 us of CPU (and two thread switches under the GIL) for a round trip
# through the threadpool.
INLINE_PREDICTION_ROWS = 32


MAX_LISTED_ERRORS = 10  # records reported in one 422


def predict(
    *,
    database: Database,
    cache: ModelCache,
    model_id: str,
    request: PredictionRequest,
    max_rows: int,
) -> PredictionResponse:
    """Labels and class probabilities for the request's rows or records; after a model's
    first prediction, one primary-key lookup (is the model still stored?)."""
    entry = cached_model(database=database, cache=cache, model_id=model_id)
    return predict_with(entry, request=request, max_rows=max_rows)


def predict_with(
    entry: LoadedModel, *, request: PredictionRequest, max_rows: int
) -> PredictionResponse:
    """``predict`` by a model already in hand (e.g. resolved through a registry alias)."""
    classifier = entry.classifier
    if request.rows is not None and request.records is None and request.dataset_id is None:
        X = _matrix_of_rows(request.rows, classifier, max_rows, entry.label)
    elif request.records is not None and request.rows is None and request.dataset_id is None:
        X = _matrix_of_records(request.records, classifier, max_rows, entry.label)
    else:
        raise _one_input_required(request)
    field = "rows" if request.rows else "records"
    probabilities, unseen = _probabilities(classifier, X, field=field)
    labels = classifier.encoder.inverse_transform(probabilities.argmax(axis=1)).tolist()
    keys = [str(c) for c in classifier.classes]
    return PredictionResponse(
        model_id=entry.id,
        classes=classifier.classes,
        predictions=[
            Prediction(label=label, probabilities=dict(zip(keys, p, strict=True)))
            for label, p in zip(labels, probabilities.tolist(), strict=True)
        ],
        warnings=unseen_warnings(classifier, unseen),
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
        stored = training_columns(dataset)
        columns = _feature_columns(classifier, dataset, stored.left_out)
        X, y_index = load_arrays(session, dataset)
        truth = labels_of(dataset, y_index)
    X = _model_columns(classifier, X, columns, stored.columns, dataset_id)
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


def _feature_columns(classifier: Classifier, dataset: Dataset, left_out: list[str]) -> list[int]:
    """The dataset's column index of each of the model's input columns; 422 when the
    dataset lacks one, or has columns the model neither reads nor left out."""
    model_names = classifier.feature_names
    dataset_names = list(dataset.features)
    ignorable = set(classifier.transform.ignored) | set(left_out)
    missing = [name for name in model_names if name not in dataset_names]
    unexpected = [
        name for name in dataset_names if name not in model_names and name not in ignorable
    ]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"lacks the model's features {missing}")
        if unexpected:
            parts.append(f"has features the model was not trained on {unexpected}")
        raise field_problem("dataset_id", f"dataset {dataset.id!r} " + " and ".join(parts))
    position = {name: index for index, name in enumerate(dataset_names)}
    return [position[name] for name in model_names]


def _model_columns(
    classifier: Classifier,
    X: np.ndarray,
    columns: list[int],
    stored: list[InputColumn],
    dataset_id: str,
) -> np.ndarray:
    """The dataset's rows (m, n_stored) as the model's coded rows (m, n_in): its columns, in
    its order, categorical codes mapped from the dataset's levels to the model's."""
    if columns != list(range(X.shape[1])):
        X = X[:, columns]
    for j, (source, target) in enumerate(
        zip([stored[c] for c in columns], classifier.columns, strict=True)
    ):
        try:
            X[:, j] = recode(X[:, j], source, target)
        except ValueError as error:
            raise field_problem("dataset_id", f"dataset {dataset_id!r}: {error}") from None
    return X


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
    rows: list[list[Cell]], classifier: Classifier, max_rows: int, label: str | None
) -> np.ndarray:
    """Rows of raw values, in the model's column order, as the coded matrix (m, n_in)."""
    _check_count(len(rows), "rows", max_rows)
    n_in = classifier.n_inputs
    wrong = [index for index, row in enumerate(rows) if len(row) != n_in]
    if wrong:
        # One value too many, and the model knows its label column: a whole CSV row.
        hint = f" (if one is {label!r}, the label column: drop it)" if label is not None else ""
        errors = [
            {
                "field": f"rows.{i}",
                "message": f"has {len(rows[i])} values; expected {n_in}"
                + (hint if len(rows[i]) == n_in + 1 else ""),
            }
            for i in wrong[:MAX_LISTED_ERRORS]
        ]
        first = errors[0]
        raise Unprocessable(
            f"{first['field']}: {first['message']}; the model's features, in order: "
            f"{classifier.feature_names}",
            errors=errors,
        )
    names = classifier.feature_names
    records = [dict(zip(names, row, strict=True)) for row in rows]
    try:
        return classifier.code_records(records)
    except RecordError as error:
        column = names.index(error.column)
        raise field_problem(
            f"rows.{error.index}.{column}", f"column {error.column!r}: {error.message}"
        ) from None


def _matrix_of_records(
    records: list[dict[str, Cell]], classifier: Classifier, max_rows: int, label: str | None
) -> np.ndarray:
    """Records keyed by column as the coded matrix (m, n_in). Every column's key must be
    there (null: a missing cell); keys of columns the model left out may come along. The
    first MAX_LISTED_ERRORS mistakes are listed, each naming its record and column."""
    _check_count(len(records), "records", max_rows)
    names = classifier.feature_names
    allowed = set(names) | set(classifier.transform.ignored)
    coder = classifier.record_coder()
    X = np.empty((len(records), classifier.n_inputs), dtype=np.float64)
    errors = []
    for index, record in enumerate(records):
        if label is not None and label in record:
            errors.append({"field": f"records.{index}.{label}", "message": label_message(label)})
        missing = [name for name in names if name not in record]
        unknown = [name for name in record if name not in allowed and name != label]
        reasons = []
        if missing:
            reasons.append(f"missing features {missing} (null is a missing value)")
        if unknown:
            reasons.append(f"unknown features {unknown}")
        if reasons:
            errors.append({"field": f"records.{index}", "message": "; ".join(reasons)})
        else:
            try:
                X[index] = coder.code(record, index)
            except RecordError as error:
                errors.append(
                    {"field": f"records.{index}.{error.column}", "message": error.message}
                )
        if len(errors) >= MAX_LISTED_ERRORS:
            break
    if errors:
        errors = errors[:MAX_LISTED_ERRORS]
        first = errors[0]
        raise Unprocessable(f"{first['field']}: {first['message']}", errors=errors)
    return X


def unseen_warnings(classifier: Classifier, unseen: np.ndarray) -> list[str]:
    """'column "x": n values never seen in training, encoded as all zeros' per column."""
    return [
        f'column "{name}": {count} value{"s" if count != 1 else ""} never seen in training '
        "(encoded as all zeros)"
        for name, count in zip(classifier.feature_names, unseen.tolist(), strict=True)
        if count
    ]


def _probabilities(
    classifier: Classifier, X: np.ndarray, field: str
) -> tuple[np.ndarray, np.ndarray]:
    """(predict_proba, unseen levels per column), refusing rows so extreme that the
    network's arithmetic overflows."""
    with np.errstate(all="ignore"):
        probabilities, unseen = classifier.predict_proba_counting(X)
    finite = np.isfinite(probabilities).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise field_problem(
            f"{field}.{row}",
            "the model's output is not finite for these values; they lie far "
            "outside the range the model was trained on",
        )
    return probabilities, unseen
