"""A batch prediction's result, streamed: CSV or Parquet made a stored block at a time.

A worker stores each block's probabilities (b, K) only (service.queue.scoring.encode_block);
the rest of a result row follows from them: ``row``, the dataset's 0-based row, is the
block's start plus the row's place in it, and ``label`` is the class of the largest
probability (ties to the first, as Classifier.predict), in the dataset's own values. A row
whose probabilities overflowed (values far outside the training range) gets empty cells
(nulls). The API holds one block at a time, never the result: each is read in its own
short session, turned into an Arrow table and written out (CSV text, or one Parquet row
group) before the next is read.
"""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import func, select

from engine import Classifier
from service.core.database import Database
from service.core.errors import Conflict
from service.core.states import SUCCEEDED
from service.core.tables import ScoringBlock
from service.models.scoring import get_task
from service.models.service import ModelCache, cached_model
from service.queue.scoring import decode_block
from service.queue.scoring_claims import BATCH_PREDICTION


def result_schema(classifier: Classifier) -> pa.Schema:
    """row (int64), label (the classes' own type), then p_<class> (float64) per class."""
    label_type = pa.array(classifier.classes).type
    fields = [pa.field("row", pa.int64()), pa.field("label", label_type)]
    fields += [pa.field(f"p_{c}", pa.float64()) for c in classifier.classes]
    return pa.schema(fields)


def result_table(
    classifier: Classifier, schema: pa.Schema, start: int, probabilities: np.ndarray
) -> pa.Table:
    """The result rows start.. of a block's probabilities (b, K)."""
    b = probabilities.shape[0]
    bad = ~np.isfinite(probabilities).all(axis=1)  # (b,)
    labels = classifier.encoder.inverse_transform(probabilities.argmax(axis=1))
    arrays = [
        pa.array(np.arange(start, start + b, dtype=np.int64)),
        pa.array(labels, type=schema.field("label").type, mask=bad),
    ]
    arrays += [pa.array(probabilities[:, k], mask=bad) for k in range(probabilities.shape[1])]
    return pa.Table.from_arrays(arrays, schema=schema)


def result_chunks(
    *, database: Database, cache: ModelCache, model_id: str, batch_id: str, file_format: str
) -> Iterator[bytes]:
    """The result of a succeeded batch prediction as CSV or Parquet bytes, a stored block
    at a time. 404 for no such batch prediction, 409 while it has not succeeded. The checks
    run here, before the first chunk is asked for."""
    with database.reads() as session:
        task = get_task(session=session, model_id=model_id, task_id=batch_id, kind=BATCH_PREDICTION)
        if task.status != SUCCEEDED:
            raise Conflict(
                f"batch prediction {batch_id!r} is {task.status} ({task.rows_done} of "
                f"{task.rows_total} rows scored): its result downloads once it has succeeded",
            )
        count = session.scalar(
            select(func.count()).select_from(ScoringBlock).where(ScoringBlock.task_id == batch_id)
        )
    classifier = cached_model(database=database, cache=cache, model_id=model_id).classifier
    schema = result_schema(classifier)
    tables = _stored_tables(database, classifier, schema, batch_id, count)
    return _csv(tables, schema) if file_format == "csv" else _parquet(tables, schema)


def _stored_tables(
    database: Database, classifier: Classifier, schema: pa.Schema, batch_id: str, count: int
) -> Iterator[pa.Table]:
    """Each stored block as result rows, read in its own short session."""
    start = 0
    for index in range(count):
        with database.reads() as session:
            data = session.scalar(
                select(ScoringBlock.data).where(
                    ScoringBlock.task_id == batch_id, ScoringBlock.index == index
                )
            )
        probabilities = decode_block(data, len(classifier.classes))  # (b, K)
        yield result_table(classifier, schema, start, probabilities)
        start += probabilities.shape[0]


def _csv(tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[bytes]:
    yield (",".join(f'"{name}"' for name in schema.names) + "\n").encode()
    options = pa_csv.WriteOptions(include_header=False)
    for table in tables:
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, write_options=options)
        yield sink.getvalue().to_pybytes()


class _Drain:
    """A write-only file for ParquetWriter whose bytes are taken after each row group;
    ``tell`` counts every byte ever written (the footer's offsets need it)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.parts.append(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _parquet(tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[bytes]:
    drain = _Drain()
    writer = pq.ParquetWriter(pa.PythonFile(drain, mode="w"), schema)
    for table in tables:
        writer.write_table(table)  # one row group per stored block
        yield drain.take()
    writer.close()
    yield drain.take()
