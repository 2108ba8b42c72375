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
class TrainingData:
    train: Split
    validation: Split  # may have m = 0
    standardizer: Standardizer
    encoder: LabelEncoder
    feature_names: list[str]

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
        }


def prepare(
    X: np.ndarray | Sequence[Sequence[float]],
    y: np.ndarray | Sequence[object],
    *,
    validation_fraction: float,
    dtype: np.dtype,
    rng: np.random.Generator,
    feature_names: Sequence[str] | None = None,
    overwrite_rows: bool = False,
) -> TrainingData:
    """Validate, split (stratified), standardize on the training split, encode labels.

    ``overwrite_rows``: X may be reordered and standardized in place and used as the
    splits' storage when it qualifies (see the module docstring); the caller must not
    use X afterwards. The result is the same either way.
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
    _check_finite(X)
    names = [str(name) for name in feature_names] if feature_names is not None else None
    if names is None:
        names = [f"x{j}" for j in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} feature names for {X.shape[1]} features")

    encoder = LabelEncoder.fit(y)
    if len(encoder.classes) < 2:
        raise ValueError(f"need at least 2 classes to train a classifier, got {encoder.classes}")
    labels = encoder.transform(y)
    train_index, validation_index = stratified_split(labels, validation_fraction, rng)
    train_labels, validation_labels = labels[train_index], labels[validation_index]
    del labels

    m_train = len(train_index)
    if overwrite_rows and can_overwrite(X, dtype):
        # Training rows first, then validation rows, each in index order: the gathered order.
        order = np.concatenate([train_index, validation_index], dtype=index_dtype(len(X)))
        del train_index, validation_index
        permute_rows_in_place(X, order)
        del order
        train_rows, validation_rows = X[:m_train], X[m_train:]
    else:
        train_rows = gather_rows(X, train_index, dtype)
        validation_rows = gather_rows(X, validation_index, dtype)
        del train_index, validation_index
    standardizer = Standardizer.fit(train_rows)
    standardizer.transform_in_place(train_rows)
    standardizer.transform_in_place(validation_rows)
    n_classes = len(encoder.classes)
    return TrainingData(
        train=_split(train_rows, train_labels, n_classes),
        validation=_split(validation_rows, validation_labels, n_classes),
        standardizer=standardizer,
        encoder=encoder,
        feature_names=names,
    )


def can_overwrite(X: np.ndarray, dtype: np.dtype) -> bool:
    """Can X (m, n_x) serve as the working buffer: writable, C order, in the training dtype?"""
    return X.dtype == np.dtype(dtype) and X.flags.c_contiguous and X.flags.writeable


def _check_finite(X: np.ndarray) -> None:
    """Raise ValueError naming the first non-finite value; checks row chunks, no X-sized mask."""
    step = chunk_rows(X)
    for start in range(0, X.shape[0], step):
        chunk = X[start : start + step]
        finite = np.isfinite(chunk)
        if not finite.all():
            row, column = np.argwhere(~finite)[0]
            raise ValueError(
                f"features must be finite: row {start + row}, column {column} "
                f"is {chunk[row, column]}"
            )


def targets(labels: np.ndarray, n_classes: int, dtype: np.dtype) -> np.ndarray:
    """Y (n_y, m): labels as the 0/1 row for two classes, one-hot columns for more."""
    if output_units(n_classes) == 1:
        return labels[np.newaxis, :].astype(dtype)
    Y = np.zeros((n_classes, len(labels)), dtype=dtype)
    Y[labels, np.arange(len(labels))] = 1.0
    return Y


def _split(rows: np.ndarray, labels: np.ndarray, n_classes: int) -> Split:
    return Split(rows=rows, Y=targets(labels, n_classes, rows.dtype), labels=labels)
