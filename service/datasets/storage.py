"""Dataset arrays in the database, in binary chunks, so any worker that reaches it can train.

A dataset is stored as two parts: "X", the float64 feature rows (m, n_x) in C
order, one column per name in ``Dataset.features``, and "y", the int32 class index of
each row (into ``Dataset.classes``). A numeric column holds its numbers; a categorical
column the code of each cell's level (the index into its schema entry's ``levels``),
exact in float64. NaN is the missing mask: IEEE's own "no value" marks a missing cell
of either kind, at no extra byte (no number a dataset may hold is NaN: infinite and
NaN numbers are refused or read as missing at upload). A column the reader left out of
training (role "ignored" in the schema) is stored too; columns named in the upload's
``ignore=`` are not. (A categorical column past BACKPROP_MAX_LEVELS has no levels: its
cells are codes up to the row where it passed the bound, NaN after; nothing reads them.)
Each part is cut into chunks of CHUNK_BYTES (the last one shorter; an empty part is one
empty chunk), numbered from 0 in order. Chunks are written and read one at a time, so
neither side ever holds a second copy of the matrix; a ChunkWriter takes the rows as an
upload is parsed, so the writer need not hold even the first. PostgreSQL stores chunks
uncompressed (migration 0006: float rows barely compress, and trying cost more than the
insert).
"""

from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from service.core.tables import Dataset, DatasetChunk

CHUNK_BYTES = 4 * 1024 * 1024
PARTS = {"X": np.dtype("<f8"), "y": np.dtype("<i4")}


def store_arrays(session: Session, dataset_id: str, X: np.ndarray, y_index: np.ndarray) -> None:
    """Add the chunks of X (m, n_x) float64 and y_index (m,) to the session's transaction."""
    store_part(session, dataset_id, "X", X)
    store_part(session, dataset_id, "y", y_index)


def store_part(session: Session, dataset_id: str, part: str, values: np.ndarray) -> None:
    """Add the chunks of one part ("X" or "y") held whole in memory."""
    writer = ChunkWriter(session, dataset_id, part)
    writer.write(values)
    writer.close()


class ChunkWriter:
    """One part of a dataset, written to the session's transaction chunk by chunk as it comes.

    ``write`` takes the part's values in order, in pieces of any size (rows of X as they
    are parsed); every CHUNK_BYTES gathered are inserted at once, so at most one chunk
    is held here. ``close`` inserts the last, shorter chunk.
    """

    def __init__(self, session: Session, dataset_id: str, part: str):
        self.session = session
        self.dataset_id = dataset_id
        self.part = part
        self.dtype = PARTS[part]
        self.index = 0  # the next chunk's number
        self.pending = np.empty(CHUNK_BYTES, dtype=np.uint8)  # the next chunk's bytes so far
        self.filled = 0

    def write(self, values: np.ndarray) -> None:
        """Append ``values`` (any shape; taken in C order as the part's dtype)."""
        data = np.ascontiguousarray(values, dtype=self.dtype).reshape(-1).view(np.uint8)
        start = 0
        while start < len(data):
            if self.filled == 0 and len(data) - start >= CHUNK_BYTES:
                self._insert(data[start : start + CHUNK_BYTES])  # a whole chunk: no copy here
                start += CHUNK_BYTES
                continue
            taken = min(CHUNK_BYTES - self.filled, len(data) - start)
            self.pending[self.filled : self.filled + taken] = data[start : start + taken]
            self.filled += taken
            start += taken
            if self.filled == CHUNK_BYTES:
                self._insert(self.pending)
                self.filled = 0

    def reset(self) -> None:
        """Delete the chunks inserted so far: the part starts over (the file is read again)."""
        self.session.execute(
            delete(DatasetChunk).where(
                DatasetChunk.dataset_id == self.dataset_id, DatasetChunk.part == self.part
            )
        )
        self.index = 0
        self.filled = 0

    def close(self) -> None:
        """Insert what is left: the last chunk (or the one empty chunk of an empty part)."""
        if self.filled or self.index == 0:
            self._insert(self.pending[: self.filled])
            self.filled = 0

    def _insert(self, data: np.ndarray) -> None:
        # The drivers copy the bytes during the call (SQLite binds them transient, libpq
        # into its buffer), so ``pending`` may be refilled as soon as this returns.
        self.session.execute(
            insert(DatasetChunk).values(
                dataset_id=self.dataset_id, part=self.part, index=self.index, data=memoryview(data)
            )
        )
        self.index += 1


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
