"""A few rows of a stored dataset, decoded back to the values of the file.

For people and forms (the dashboard fills its prediction form from a stored row), not for
bulk reads: at most ROWS_MAX_LIMIT rows per request. The stored X is row-major float64, cut
into chunks of CHUNK_BYTES (service.datasets.storage), so rows [offset, offset + limit) lie
in one or two chunks, found by arithmetic: the rows before them are never read.
"""

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import CATEGORICAL
from service.core.tables import Dataset, DatasetChunk
from service.datasets.input_columns import training_columns
from service.datasets.storage import CHUNK_BYTES, PARTS

ROWS_MAX_LIMIT = 100


def read_row_slice(session: Session, dataset: Dataset, offset: int, limit: int) -> list[dict]:
    """Rows ``offset`` .. ``offset + limit - 1`` (fewer at the end) as
    ``{"row", "values": {column: number | level | None}, "label"}``: a categorical's level as
    its text, a missing cell as None, the label as the dataset's class."""
    stop = min(offset + limit, dataset.rows)
    if offset >= stop:
        return []
    n_x = len(dataset.features)
    X = _elements(session, dataset.id, "X", offset * n_x, stop * n_x).reshape(stop - offset, n_x)
    y = _elements(session, dataset.id, "y", offset, stop)
    columns = training_columns(dataset).columns
    return [
        {
            "row": offset + i,
            "values": {
                column.name: _cell(value, column.levels if column.kind == CATEGORICAL else None)
                for column, value in zip(columns, X[i].tolist(), strict=True)
            },
            "label": dataset.classes[int(y[i])],
        }
        for i in range(stop - offset)
    ]


def _cell(value: float, levels: tuple[str, ...] | None) -> float | str | None:
    """A stored cell as the file had it: NaN is missing; a categorical's code is its level."""
    if np.isnan(value):
        return None
    return levels[int(value)] if levels is not None else value


def _elements(session: Session, dataset_id: str, part: str, start: int, stop: int) -> np.ndarray:
    """Elements [start, stop) of a stored part, from the chunks that hold them."""
    itemsize = PARTS[part].itemsize
    first, last = start * itemsize // CHUNK_BYTES, (stop * itemsize - 1) // CHUNK_BYTES
    chunks = session.scalars(
        select(DatasetChunk.data)
        .where(
            DatasetChunk.dataset_id == dataset_id,
            DatasetChunk.part == part,
            DatasetChunk.index.between(first, last),
        )
        .order_by(DatasetChunk.index)
    ).all()
    values = np.frombuffer(b"".join(chunks), dtype=PARTS[part])
    skip = start - first * CHUNK_BYTES // itemsize
    return values[skip : skip + stop - start]
