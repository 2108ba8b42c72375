"""What is kept with a model besides its parameters: feature scaling and label encoding.

Both are fitted on the training split only, so the validation loss measures
what prediction on unseen rows will do.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CHUNK_BYTES = 1 << 20  # rows are copied and scaled ~1 MiB at a time: no X-sized temporaries


def chunk_rows(rows: np.ndarray) -> int:
    """How many rows of ``rows`` make about CHUNK_BYTES."""
    row_bytes = max(1, rows.shape[1] * np.dtype(np.float64).itemsize)
    return max(1, CHUNK_BYTES // row_bytes)


@dataclass(frozen=True)
class Standardizer:
    """x' = (x - mean) / scale per feature; scale is 1 for a constant feature."""

    mean: np.ndarray  # (n_x,) float64
    scale: np.ndarray  # (n_x,) float64

    @classmethod
    def fit(cls, rows: np.ndarray) -> "Standardizer":
        """Statistics of ``rows`` (m, n_x) in float64, two passes over row chunks.

        ``rows.std()`` would build the whole of ``rows - mean``: an X-sized temporary.
        """
        step = chunk_rows(rows)
        total = np.zeros(rows.shape[1])
        for start in range(0, rows.shape[0], step):
            total += rows[start : start + step].sum(axis=0, dtype=np.float64)
        mean = total / rows.shape[0]
        squares = np.zeros(rows.shape[1])
        buffer = np.empty((min(step, rows.shape[0]), rows.shape[1]))  # one chunk's deviations
        for start in range(0, rows.shape[0], step):
            chunk = rows[start : start + step]
            deviation = np.subtract(chunk, mean, out=buffer[: len(chunk)])  # (chunk, n_x) float64
            squares += np.einsum("ij,ij->j", deviation, deviation)
        std = np.sqrt(squares / rows.shape[0])
        # A constant column carries no information; dividing by ~0 would only amplify noise.
        scale = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(mean=mean, scale=scale)

    @classmethod
    def identity(cls, n_features: int) -> "Standardizer":
        return cls(mean=np.zeros(n_features), scale=np.ones(n_features))

    def transform_in_place(self, rows: np.ndarray) -> np.ndarray:
        """Standardize ``rows`` (m, n_x), a float array owned by the caller, in place."""
        mean, scale = self.mean.astype(rows.dtype), self.scale.astype(rows.dtype)
        step = chunk_rows(rows)
        for start in range(0, rows.shape[0], step):
            chunk = rows[start : start + step]
            chunk -= mean
            chunk /= scale
        return rows

    def transform(self, rows: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """A standardized copy of ``rows`` (m, n_x) in ``dtype``."""
        return self.transform_in_place(np.array(rows, dtype=dtype, copy=True))


def gather_rows(
    X: np.ndarray, index: np.ndarray, dtype: np.dtype, columns: list[int] | None = None
) -> np.ndarray:
    """X[index][:, columns] cast to ``dtype``, (len(index), k), copied in chunks to bound memory."""
    columns = list(range(X.shape[1])) if columns is None else columns
    out = np.empty((len(index), len(columns)), dtype=dtype)
    step = chunk_rows(X)
    every = columns == list(range(X.shape[1]))
    for start in range(0, len(index), step):
        chunk = index[start : start + step]
        out[start : start + len(chunk)] = X[chunk] if every else X[chunk][:, columns]
    return out


def index_dtype(m: int) -> type:
    """int32 for indices of m rows while they fit: half the memory of intp on a large dataset."""
    return np.int32 if m <= np.iinfo(np.int32).max else np.intp


def permute_rows_in_place(rows: np.ndarray, order: np.ndarray) -> np.ndarray:
    """rows[i] = (old) rows[order[i]] for every i, in place, in ~1 MiB chunks; returns rows.

    ``order`` (m,) must be a permutation of 0..m-1. The destinations are filled a
    chunk [start, stop) at a time, in order, so everything before ``start`` is final
    and every row still needed sits at ``start`` or after. A chunk gathers the rows
    it needs from wherever they are now; the rows it held that are needed later
    move into the places those rows left. Two position maps (int32 while m allows)
    follow every row. Beyond ``rows`` this holds the maps and two chunks of rows;
    every row is written once into its final place and, all chunks together, at
    most m rows are displaced, so it costs at most about two copies of ``rows``.
    """
    m = rows.shape[0]
    if not _is_permutation(order, m):
        raise ValueError(f"order must be a permutation of the {m} rows")
    where = np.arange(m, dtype=index_dtype(m))  # where[r]: the position now holding row r
    held = np.arange(m, dtype=index_dtype(m))  # held[p]: the original row now at position p
    step = chunk_rows(rows)
    for start in range(0, m, step):
        stop = min(start + step, m)
        needed = order[start:stop]  # original rows, (b,)
        sources = where[needed]  # their positions now, all >= start
        if np.array_equal(sources, np.arange(start, stop)):
            continue  # already in place (e.g. the rows before the first one that moves)
        gathered = rows[sources]  # (b, n_x)
        inside = sources < stop
        kept = np.zeros(stop - start, dtype=bool)
        kept[sources[inside] - start] = True
        displaced = start + np.flatnonzero(~kept)  # positions whose rows are needed later
        vacated = sources[~inside]  # positions past the chunk whose rows it takes
        if len(displaced):
            rows[vacated] = rows[displaced]
            moved = held[displaced]
            where[moved] = vacated
            held[vacated] = moved
        rows[start:stop] = gathered
        held[start:stop] = needed
    return rows


def _is_permutation(order: np.ndarray, m: int) -> bool:
    if order.shape != (m,) or order.dtype.kind not in "iu":
        return False
    if m == 0:
        return True
    if order.min() < 0 or order.max() >= m:
        return False
    seen = np.zeros(m, dtype=bool)
    seen[order] = True
    return bool(seen.all())


class LabelEncoder:
    """Maps any label values (ints, floats, strings, bools) to class indices 0..K-1, sorted."""

    def __init__(self, classes: Sequence[object]):
        self.classes = list(classes)
        self._classes_array = _as_label_array(self.classes)

    @classmethod
    def fit(cls, y: np.ndarray) -> "LabelEncoder":
        y = _as_label_array(y)
        try:
            classes = np.unique(y)
        except TypeError as error:
            raise ValueError("labels must be all numbers or all strings, not a mixture") from error
        if classes.dtype.kind == "f" and not np.isfinite(classes).all():
            raise ValueError("labels must be finite: found NaN or infinity")
        return cls([_plain(value) for value in classes])

    def transform(self, y: np.ndarray) -> np.ndarray:
        """Class indices (m,) of labels y; unknown labels raise ValueError."""
        y = _as_label_array(y)
        index = np.searchsorted(self._classes_array, y)
        np.clip(index, 0, len(self.classes) - 1, out=index)
        unknown = self._classes_array[index] != y
        if np.any(unknown):
            raise ValueError(f"unknown label {_plain(y[np.argmax(unknown)])!r}")
        return index.astype(np.intp, copy=False)

    def inverse_transform(self, index: np.ndarray) -> np.ndarray:
        return self._classes_array[index]

    def to_json(self) -> str:
        return json.dumps(self.classes)

    @classmethod
    def from_json(cls, text: str) -> "LabelEncoder":
        return cls(json.loads(text))


def _as_label_array(values: Sequence[object] | np.ndarray) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind == "O":  # e.g. pandas strings: compare as str
        array = array.astype(str)
    return array


def _plain(value: object) -> object:
    """A NumPy scalar as the plain Python value JSON can carry."""
    return value.item() if isinstance(value, np.generic) else value


def stratified_split(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices, sorted, with each class split in ``fraction``.

    A class with fewer than two rows stays wholly in the training split, so
    every class can still be learned.
    """
    if fraction <= 0.0:
        return np.arange(len(labels)), np.empty(0, dtype=np.intp)
    validation = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        take = round(fraction * len(rows)) if len(rows) >= 2 else 0
        take = min(take, len(rows) - 1)
        # A copy of the kept part: the slice alone would hold on to the class's whole shuffle.
        validation.append(rng.permutation(rows)[:take].copy())
    held_out = np.sort(np.concatenate(validation)).astype(np.intp, copy=False)
    keep = np.ones(len(labels), dtype=bool)
    keep[held_out] = False
    return np.flatnonzero(keep), held_out
