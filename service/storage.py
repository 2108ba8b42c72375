"""Dataset arrays in the database, in binary chunks, so any worker that reaches it can train.

A dataset is stored as two parts: "X", the float64 feature rows (m, n_x) in C
order, and "y", the int32 class index of each row (into ``Dataset.classes``).
Chunks are CHUNK_BYTES each, written and read one at a time, so neither side
ever holds a second copy of the matrix.
"""

from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.tables import Dataset, DatasetChunk

CHUNK_BYTES = 4 * 1024 * 1024
PARTS = {"X": np.dtype("<f8"), "y": np.dtype("<i4")}


def store_arrays(session: Session, dataset_id: str, X: np.ndarray, y_index: np.ndarray) -> None:
    """Add the chunks of X (m, n_x) float64 and y_index (m,) to the session."""
    for part, array in (("X", X), ("y", y_index)):
        data = np.ascontiguousarray(array, dtype=PARTS[part])
        raw = memoryview(data.reshape(-1).view(np.uint8))
        for index, start in enumerate(range(0, max(len(raw), 1), CHUNK_BYTES)):
            chunk = DatasetChunk(
                dataset_id=dataset_id,
                part=part,
                index=index,
                data=bytes(raw[start : start + CHUNK_BYTES]),
            )
            session.add(chunk)
            session.flush()  # send it now: the ORM would otherwise keep every chunk until commit
            session.expunge(chunk)


def load_arrays(session: Session, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(X (m, n_x) float64, y_index (m,) int32), filled chunk by chunk."""
    m, n_x = dataset.rows, len(dataset.features)
    X = np.empty((m, n_x), dtype=PARTS["X"])
    y_index = np.empty(m, dtype=PARTS["y"])
    for part, array in (("X", X), ("y", y_index)):
        target = array.reshape(-1).view(np.uint8)
        offset = 0
        statement = (
            select(DatasetChunk.data)
            .where(DatasetChunk.dataset_id == dataset.id, DatasetChunk.part == part)
            .order_by(DatasetChunk.index)
            .execution_options(yield_per=1)
        )
        for data in session.scalars(statement):
            target[offset : offset + len(data)] = np.frombuffer(data, dtype=np.uint8)
            offset += len(data)
        if offset != target.size:
            raise ValueError(
                f"dataset {dataset.id} part {part}: {offset} of {target.size} bytes stored"
            )
    return X, y_index


def labels_of(dataset: Dataset, y_index: np.ndarray) -> np.ndarray:
    """The label values (the dataset's own: ints, floats, strings, booleans) of each row."""
    return np.asarray(dataset.classes, dtype=_label_dtype(dataset.classes))[y_index]


def _label_dtype(classes: list[Any]) -> Any:
    if all(isinstance(c, bool) for c in classes):
        return bool
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return np.int64
    if all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes):
        return np.float64
    return str
