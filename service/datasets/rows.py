"""A stored dataset's rows, read straight into the dtype a job trains in.

service.datasets.storage keeps X as float64 chunks and ``load_arrays`` rebuilds the
float64 matrix: for a float32 job that is twice what training needs, before
the engine's own copy. ``load_rows`` allocates the (m, n_x) matrix once, in the
training dtype and C order, and casts each stored chunk into it as the chunk
arrives, so no float64 copy of X exists at any time: memory is the matrix plus
the chunks in flight (CHUNK_BYTES each; SQLAlchemy holds the previous row while
it fetches the next, so two of them). The values are exactly
``load_arrays(...)[0].astype(dtype)`` (the same round-to-nearest cast).

The worker gives the matrix to ``engine.fit(..., overwrite_rows=True)``, which
then splits and standardizes it in place (engine.data): the dataset is in
memory once, in the training dtype, for the whole job.
"""

from typing import Any

import numpy as np
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.specs import DTYPE_NAMES, TrainingSpec
from service.core.tables import Dataset, DatasetChunk
from service.datasets.storage import PARTS


def training_dtype(training_spec: dict[str, Any]) -> np.dtype:
    """The dtype a stored training spec trains in; float64 for a name the engine will refuse.

    An invalid spec is the engine's to reject, with its own message: the rows it is
    refused with do not matter.
    """
    name = training_spec.get("dtype", TrainingSpec.dtype)
    return np.dtype(name if name in DTYPE_NAMES else TrainingSpec.dtype)


def load_rows(session: Session, dataset: Dataset, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(X (m, n_x) in ``dtype``, C order, writable; y_index (m,) int32), chunk by chunk."""
    m, n_x = dataset.rows, len(dataset.features)
    X = np.empty((m, n_x), dtype=dtype)
    y_index = np.empty(m, dtype=PARTS["y"])
    _fill(session, dataset, "X", X.reshape(-1))
    _fill(session, dataset, "y", y_index)
    return X, y_index


def _fill(session: Session, dataset: Dataset, part: str, target: np.ndarray) -> None:
    """Cast the stored chunks of ``part`` into the flat ``target``, one chunk at a time.

    One query per chunk by its index, not one streamed query: a server-side cursor costs
    PostgreSQL round trips (DECLARE, FETCH, CLOSE) that a small dataset's single chunk
    does not need, and each chunk still arrives alone.
    """
    stored = PARTS[part]
    statement = select(DatasetChunk.data).where(
        DatasetChunk.dataset_id == dataset.id,
        DatasetChunk.part == part,
        DatasetChunk.index == bindparam("index"),
    )
    offset, index = 0, 0  # elements filled, next chunk
    while offset < target.size:
        data = session.scalar(statement, {"index": index})
        if data is None:
            break
        if len(data) % stored.itemsize or offset + len(data) // stored.itemsize > target.size:
            raise ValueError(_size_error(dataset, part, offset * stored.itemsize + len(data)))
        values = np.frombuffer(data, dtype=stored)  # a view of the chunk's bytes
        target[offset : offset + len(values)] = values  # the cast, into place
        offset += len(values)
        index += 1
    if offset != target.size:
        raise ValueError(_size_error(dataset, part, offset * stored.itemsize))


def _size_error(dataset: Dataset, part: str, stored_bytes: int) -> str:
    expected = dataset.rows * PARTS[part].itemsize * (len(dataset.features) if part == "X" else 1)
    return f"dataset {dataset.id} part {part}: {stored_bytes} of {expected} bytes stored"
