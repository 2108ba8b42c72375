"""A stored dataset read a block of rows at a time, and its columns coded for a model.

Scoring a large dataset (service.queue.scoring) must not hold it whole: a block of rows
[start, end) of part "X" is the bytes [start * n_x * 8, end * n_x * 8) of the part, and
service.datasets.storage cuts every part into chunks of exactly CHUNK_BYTES (the last
one shorter), numbered in order, so the block lies in chunks start_byte // CHUNK_BYTES
to (end_byte - 1) // CHUNK_BYTES: one query fetches those (at most the block's bytes
plus two chunks), and nothing else of the dataset is read.

``ModelInput`` is the mapping of a dataset's stored columns onto a model's input columns,
checked once (which the dataset lacks, which it has that the model never saw, kinds that
cannot be recoded) and then applied to every block: the model's columns in its order,
categorical codes mapped from the dataset's levels to the model's (engine.recode). The
coded rows go to Classifier.predict_proba, the model's own prediction path, so a block
gets the same bits as the whole array would.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import Classifier, InputColumn, recode
from service.core.errors import field_problem
from service.core.tables import Dataset, DatasetChunk
from service.datasets.input_columns import training_columns
from service.datasets.storage import CHUNK_BYTES, PARTS


def read_block(session: Session, dataset: Dataset, part: str, start: int, end: int) -> np.ndarray:
    """Rows [start, end) of ``part``: X (end - start, n_x) float64, or y (end - start,) int32.

    Raises ValueError when the stored chunks do not hold those bytes (a damaged dataset).
    """
    width = len(dataset.features) if part == "X" else 1
    dtype = PARTS[part]
    out = np.empty((end - start) * width, dtype=dtype)
    first, last = start * width * dtype.itemsize, end * width * dtype.itemsize
    if last > first:
        target = out.view(np.uint8)
        low, high = first // CHUNK_BYTES, (last - 1) // CHUNK_BYTES
        filled = 0
        for index, data in _chunks(session, dataset.id, part, low, high):
            if index < high and len(data) != CHUNK_BYTES:
                raise ValueError(f"dataset {dataset.id} part {part}: chunk {index} is short")
            base = index * CHUNK_BYTES
            lo, hi = max(first, base) - base, min(last, base + len(data)) - base
            target[filled : filled + hi - lo] = np.frombuffer(data, dtype=np.uint8)[lo:hi]
            filled += hi - lo
        if filled != target.size:
            raise ValueError(
                f"dataset {dataset.id} part {part}: rows {start}..{end} not all stored"
            )
    return out.reshape(end - start, width) if part == "X" else out


# PostgreSQL sends bytea as hex text unless a cursor asks for binary results: twice the
# bytes on the wire and a decode in this process, which halved a worker's scoring speed.
# SQLAlchemy's psycopg dialect has no option for it, so the chunks of a block are fetched
# on the session's own connection (its transaction) with a binary cursor.
CHUNKS_SQL = (
    'SELECT "index", data FROM dataset_chunks WHERE dataset_id = %s AND part = %s '
    'AND "index" BETWEEN %s AND %s ORDER BY "index"'
)


def _chunks(
    session: Session, dataset_id: str, part: str, low: int, high: int
) -> Iterable[tuple[int, bytes]]:
    """(index, data) of the part's chunks low..high, in order."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor(binary=True) as cursor:
            cursor.execute(CHUNKS_SQL, (dataset_id, part, low, high))
            return cursor.fetchall()
    statement = (
        select(DatasetChunk.index, DatasetChunk.data)
        .where(
            DatasetChunk.dataset_id == dataset_id,
            DatasetChunk.part == part,
            DatasetChunk.index.between(low, high),
        )
        .order_by(DatasetChunk.index)
    )
    return [(row.index, row.data) for row in session.execute(statement)]


@dataclass(frozen=True)
class ModelInput:
    """How a dataset's stored columns (m, n_stored) become a model's coded rows (m, n_in)."""

    positions: list[int]  # the stored column of each of the model's input columns
    sources: list[InputColumn]  # those stored columns, as the dataset codes them
    targets: list[InputColumn]  # the model's input columns, as it codes them

    @classmethod
    def of(
        cls, classifier: Classifier, dataset: Dataset, field: str = "dataset_id"
    ) -> "ModelInput":
        """The mapping, or a 422 naming ``field``: the model's columns the dataset lacks,
        columns it has that the model neither reads nor left out, or a column of text in
        the data that the model reads as numbers."""
        stored = training_columns(dataset)
        names = list(dataset.features)
        ignorable = set(classifier.transform.ignored) | set(stored.left_out)
        missing = [name for name in classifier.feature_names if name not in names]
        unexpected = [
            name for name in names if name not in classifier.feature_names and name not in ignorable
        ]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"lacks the model's features {missing}")
            if unexpected:
                parts.append(f"has features the model was not trained on {unexpected}")
            raise field_problem(field, f"dataset {dataset.id!r} " + " and ".join(parts))
        positions = [names.index(name) for name in classifier.feature_names]
        mapping = cls(positions, [stored.columns[p] for p in positions], list(classifier.columns))
        try:
            mapping.code(np.empty((0, len(names))))  # recode refuses by kind, not by value
        except ValueError as error:
            raise field_problem(field, f"dataset {dataset.id!r}: {error}") from None
        return mapping

    def code(self, X: np.ndarray) -> np.ndarray:
        """Stored rows (b, n_stored) -> the model's coded rows (b, n_in): X itself when the
        dataset's columns are the model's, in its order, coded alike (nothing to do)."""
        changed = [
            j for j, (s, t) in enumerate(zip(self.sources, self.targets, strict=True)) if s != t
        ]
        if not changed and self.positions == list(range(X.shape[1])):
            return X
        coded = X[:, self.positions]  # fancy indexing copies: X is left as it was
        for j in changed:  # an equal column's recode gives its values back
            coded[:, j] = recode(coded[:, j], self.sources[j], self.targets[j])
        return coded


def class_index(classifier: Classifier, dataset: Dataset, field: str = "dataset_id") -> np.ndarray:
    """The model's class index of each of the dataset's classes: (len(dataset.classes),)
    intp, for y_index -> the model's y. 422 naming the dataset's labels the model does not
    know (a row of such a class has no probability to be scored by)."""
    known = {_key(label): k for k, label in enumerate(classifier.classes)}
    unknown = [label for label in dataset.classes if _key(label) not in known]
    if unknown:
        raise field_problem(
            field,
            f"dataset {dataset.id!r} has labels the model does not know: {unknown} "
            f"(the model's classes: {list(classifier.classes)})",
        )
    return np.array([known[_key(label)] for label in dataset.classes], dtype=np.intp)


def _key(label: object) -> tuple[bool, object]:
    """Labels compare by value, but True is not 1: booleans keep their own kind."""
    return isinstance(label, bool), label
