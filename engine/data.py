"""Turning raw rows and labels into the engine's training matrices.

Input is a table, one row per sample (m, n_x), the way datasets arrive. The
engine's notation is X (n_x, m), one column per sample: the standardized
rows (m, n_x) in C order, transposed, are exactly that with no copy, and a
block of columns X[:, a:b] is contiguous in memory.

Two ways to get the standardized rows, with bit-identical results:

* by default the caller's X is never written: the train and validation rows
  are gathered into new arrays in the training dtype (together the size of X);
* with ``overwrite_rows=True`` and X already a writable C-order array in the
  training dtype, X itself becomes the working buffer (as scipy's
  ``overwrite_a``: the caller gives X up, and a copy is still made when X does
  not qualify). Its rows are permuted in place so the training rows come first
  and the validation rows after, each in their original order, exactly the
  order the gathered copies have; the two Splits are views of that one buffer,
  standardized in place. Nothing X-sized is allocated: the permutation works in
  ~1 MiB chunks with two int32 position maps, the finiteness check and the
  standardizer go through row chunks too. This is how a worker trains on a
  dataset as large as its memory allows.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.columns import CATEGORICAL, NUMERIC, InputColumn
from engine.encoding import ColumnTransform, check_coded_rows
from engine.outputs import output_units
from engine.preprocessing import (
    LabelEncoder,
    Standardizer,
    chunk_rows,
    gather_rows,
    index_dtype,
    permute_rows_in_place,
    stratified_split,
)
from engine.specs import PreprocessingSpec, SpecError


@dataclass(frozen=True)
class Split:
    """One part of the data in the engine's layout."""

    rows: np.ndarray  # (m, n_x) standardized, C order: gather mini-batches from here
    Y: np.ndarray  # (n_y, m) targets: the 0/1 row, or one-hot columns
    labels: np.ndarray  # (m,) class indices

    @property
    def X(self) -> np.ndarray:
        """(n_x, m): the transposed view of ``rows``, the note's layout."""
        return self.rows.T

    @property
    def m(self) -> int:
        return self.rows.shape[0]


@dataclass(frozen=True)
class Fitted:
    """Preprocessing fitted before the fit (a warm start's parent's): used, never refitted."""

    transform: ColumnTransform
    standardizer: Standardizer
    encoder: LabelEncoder


@dataclass(frozen=True)
class TrainingData:
    train: Split
    validation: Split  # may have m = 0
    standardizer: Standardizer
    encoder: LabelEncoder
    transform: ColumnTransform  # input columns -> features, fitted on the training split

    @property
    def feature_names(self) -> list[str]:
        """The input columns the model reads, in order."""
        return self.transform.input_names

    @property
    def n_features(self) -> int:
        return self.train.rows.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.encoder.classes)

    def fingerprint(self) -> dict[str, object]:
        """What a checkpoint must match to be resumed on this data."""
        return {
            "n_features": self.n_features,
            "classes": self.encoder.classes,
            "m_train": self.train.m,
            "m_validation": self.validation.m,
            "mean_sha256": hashlib.sha256(self.standardizer.mean.tobytes()).hexdigest(),
            "features": self.transform.output_names,
        }


def prepare(
    X: np.ndarray | Sequence[Sequence[float]],
    y: np.ndarray | Sequence[object],
    *,
    validation_fraction: float,
    dtype: np.dtype,
    rng: np.random.Generator,
    feature_names: Sequence[str] | None = None,
    columns: Sequence[InputColumn] | None = None,
    preprocessing: PreprocessingSpec | None = None,
    overwrite_rows: bool = False,
    fitted: Fitted | None = None,
) -> TrainingData:
    """Validate, split (stratified), fit the column transform and the standardization on
    the training split, encode labels.

    X is the coded table (m, n_in) of engine.columns: NaN is a missing cell. ``columns``
    describes its columns (default: numeric, named by ``feature_names`` or x0, x1, ...).
    ``overwrite_rows``: X may be reordered and transformed in place and used as the
    splits' storage when it qualifies (see the module docstring); the caller must not
    use X afterwards. The result is the same either way.
    ``fitted``: the column transform, standardization and classes to use as they are
    (X's columns must then be the transform's, coded by its levels: engine.warm).
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D table of rows (m, n_x), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"features must be numbers, got dtype {X.dtype}")
    if y.ndim != 1 or len(y) != X.shape[0]:
        raise ValueError(
            f"y must be 1-D with one label per row ({X.shape[0]}), got shape {y.shape}"
        )
    if X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"need at least 2 rows and 1 feature, got shape {X.shape}")
    preprocessing = preprocessing or PreprocessingSpec()
    table = table_columns(X.shape[1], columns, feature_names)
    used, ignored = _used_columns(table, preprocessing)
    check_coded_rows(X, table)

    encoder = fitted.encoder if fitted else LabelEncoder.fit(y)
    if len(encoder.classes) < 2:
        raise ValueError(f"need at least 2 classes to train a classifier, got {encoder.classes}")
    labels = encoder.transform(y)
    train_index, validation_index = stratified_split(labels, validation_fraction, rng)
    train_labels, validation_labels = labels[train_index], labels[validation_index]
    del labels

    m_train = len(train_index)
    if overwrite_rows and can_overwrite(X, dtype):
        X = compact_columns_in_place(X, used)
        # Training rows first, then validation rows, each in index order: the gathered order.
        order = np.concatenate([train_index, validation_index], dtype=index_dtype(len(X)))
        del train_index, validation_index
        permute_rows_in_place(X, order)
        del order
        train_rows, validation_rows = X[:m_train], X[m_train:]
    else:
        train_rows = gather_rows(X, train_index, dtype, used)
        validation_rows = gather_rows(X, validation_index, dtype, used)
        del train_index, validation_index
    if fitted is not None:
        transform = fitted.transform
    else:
        ignored_names = [table[j].name for j in ignored]
        transform = ColumnTransform.fit(
            train_rows, [table[j] for j in used], preprocessing, ignored_names
        )
    if transform.keeps_width:  # numbers only: filled where they lie
        train_rows = transform.fill_in_place(train_rows)
        validation_rows = transform.fill_in_place(validation_rows)
    else:
        train_rows = transform.transform(train_rows, dtype)[0]
        validation_rows = transform.transform(validation_rows, dtype)[0]
    if fitted is not None:
        standardizer = fitted.standardizer
    else:
        standardizer = _standardizer(train_rows, transform, preprocessing)
    standardizer.transform_in_place(train_rows)
    standardizer.transform_in_place(validation_rows)
    n_classes = len(encoder.classes)
    return TrainingData(
        train=_split(train_rows, train_labels, n_classes),
        validation=_split(validation_rows, validation_labels, n_classes),
        standardizer=standardizer,
        encoder=encoder,
        transform=transform,
    )


def table_columns(
    n: int, columns: Sequence[InputColumn] | None, names: Sequence[str] | None
) -> list[InputColumn]:
    """The table's columns: as given, or numeric ones named by ``names`` or x0, x1, ..."""
    if columns is not None:
        if names is not None and [str(n) for n in names] != [c.name for c in columns]:
            raise ValueError("feature_names and columns name different columns")
        table = list(columns)
    else:
        named = [str(name) for name in names] if names is not None else None
        table = [InputColumn(name) for name in (named or [f"x{j}" for j in range(n)])]
    if len(table) != n:
        raise ValueError(f"{len(table)} feature names for {n} features")
    if len({c.name for c in table}) != len(table):
        raise ValueError("column names must be distinct")
    return table


def _used_columns(table: list[InputColumn], spec: PreprocessingSpec) -> tuple[list[int], list[int]]:
    """(indices of the columns the model reads, of those left out), after the spec's
    ``categorical`` and ``ignore``, which must name columns of the table."""
    names = {column.name: j for j, column in enumerate(table)}
    for field in ("categorical", "ignore"):
        unknown = [name for name in getattr(spec, field) if name not in names]
        if unknown:
            raise SpecError(f"preprocessing.{field}", f"{unknown} are not columns of the table")
    for name in spec.categorical:
        j = names[name]
        if table[j].kind == NUMERIC:  # numbers that are categories: each number a level
            table[j] = InputColumn(name, CATEGORICAL)
    ignored = [names[name] for name in spec.ignore]
    used = [j for j in range(len(table)) if j not in ignored]
    if not used:
        raise SpecError("preprocessing.ignore", "leaves no column to train on")
    return used, ignored


def _standardizer(
    rows: np.ndarray, transform: ColumnTransform, spec: PreprocessingSpec
) -> Standardizer:
    """Standardization of the numeric features of ``rows`` (m, n_out); identity elsewhere."""
    if not spec.standardize:
        return Standardizer.identity(rows.shape[1])
    fitted = Standardizer.fit(rows)
    numeric = transform.standardized_outputs
    return Standardizer(
        mean=np.where(numeric, fitted.mean, 0.0), scale=np.where(numeric, fitted.scale, 1.0)
    )


def compact_columns_in_place(X: np.ndarray, used: list[int]) -> np.ndarray:
    """X[:, used] as a C-order (m, len(used)) view of X's own memory, moved in row chunks.

    A row's new place starts no later than its old one, so walking the rows in order
    never overwrites a row not yet moved.
    """
    m, n = X.shape
    if used == list(range(n)):
        return X
    flat = X.reshape(-1)
    k = len(used)
    step = chunk_rows(X)
    for start in range(0, m, step):
        chunk = X[start : start + step][:, used].copy()  # (b, k): the chunk's kept cells
        flat[start * k : (start + len(chunk)) * k] = chunk.reshape(-1)
    return flat[: m * k].reshape(m, k)


def can_overwrite(X: np.ndarray, dtype: np.dtype) -> bool:
    """Can X (m, n_x) serve as the working buffer: writable, C order, in the training dtype?"""
    return X.dtype == np.dtype(dtype) and X.flags.c_contiguous and X.flags.writeable


def targets(labels: np.ndarray, n_classes: int, dtype: np.dtype) -> np.ndarray:
    """Y (n_y, m): labels as the 0/1 row for two classes, one-hot columns for more."""
    if output_units(n_classes) == 1:
        return labels[np.newaxis, :].astype(dtype)
    Y = np.zeros((n_classes, len(labels)), dtype=dtype)
    Y[labels, np.arange(len(labels))] = 1.0
    return Y


def _split(rows: np.ndarray, labels: np.ndarray, n_classes: int) -> Split:
    return Split(rows=rows, Y=targets(labels, n_classes, rows.dtype), labels=labels)
