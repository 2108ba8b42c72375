"""The fast path of reading an upload: typed record batches, streamed, or a step aside.

service.datasets.parsing reads a CSV file with every column as text and decides from the
text what each cell is. That is exact, and its refusals say which cell is wrong
and why, but text columns are slow to read, and the whole text table and the
matrix are held at once. Here the file is read as a stream of typed record
batches instead (CSV: pyarrow.csv.open_csv with the feature columns' types
inferred by Arrow from the first block and declared, the label column as
dictionary-encoded text; Parquet: ParquetFile.iter_batches), decoded in a thread
of its own, and each batch becomes rows of the float64 (m, n_x) C-order matrix
that go to a sink at once (service.datasets.storage.ChunkWriter: the database, chunk by
chunk). Only the label column is kept, as a 4-byte code per row, so memory does
not grow with the file otherwise.

The fast path gives up (``read`` returns None) at the first thing service.datasets.parsing
might read differently or refuse: a header or a limit it would refuse, a column
type other than integers or floats (booleans, dates, text), a conversion error,
an empty cell, a value that is not finite, more distinct labels than max_classes,
fewer than 2 rows. service.datasets.parsing then reads the file and decides: it is the
referee, and every refusal is its own. When the fast path finishes, its result is
what service.datasets.parsing gives, value for value (tests/property/test_fast_parsing.py
checks this on generated files). Why the two agree on what both accept:

- Rows: Arrow splits the rows of a CSV file by its ReadOptions and ParseOptions,
  the same here as in service.datasets.parsing, save the block size. Without a quote
  character (after the header line) rows end at line ends, whatever the block
  size, so such files are read in small blocks (less memory); files with quotes
  are read in service.datasets.parsing's blocks.
- Integer or number: service.datasets.parsing says "integer" when every cell casts to
  int64. Here the types are those Arrow infers from service.datasets.parsing's first
  block: a column inferred as int64 (every cell there is one) is read as int64,
  and a later cell that is not an integer fails to convert: the stream starts
  over with that column as float64, a "number". Arrow's converters trim spaces
  and tabs around numbers, as service.datasets.parsing does (it trims other Unicode
  spaces too: Arrow fails to convert those cells, and the fast path gives up).
- Values: integers become float64 by the same C conversion in both, floats are
  parsed by the same routine, Parquet columns are cast batch by batch as
  service.datasets.parsing casts them whole (a cast is value by value), and labels go
  through service.datasets.parsing's own label_values and classes_of, applied to the
  distinct labels.

Memory: a few blocks are read ahead of the batches taken (readahead.PacedFile)
and a few batches decoded ahead of the one stored (readahead.Prefetcher).
"""

import ctypes
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from service.core.errors import ServiceError
from service.core.settings import Settings
from service.datasets import parsing
from service.datasets.parsing import ParsedDataset
from service.datasets.readahead import PacedFile, Prefetcher

QUOTE_FREE_BLOCK_BYTES = 2**20  # CSV blocks when no quote can make rows depend on them
PARQUET_BATCH_BYTES = 8 * 2**20  # rows per Parquet batch: about this much matrix
PARQUET_BUFFER_BYTES = 64 * 2**10  # column chunks are read in pieces this big, not whole
PREFETCH = 4  # batches decoded ahead of the one being converted and stored
MAX_RESTARTS = 3  # CSV columns retyped from int64 to float64 before the fast path gives up
SCAN_BYTES = 2**20  # read at a time when looking for quotes
LINE_SEARCH_BYTES = 2**20  # how far back from the first block's end to look for a line end

LABEL_TEXT = pa.dictionary(pa.int32(), pa.string())  # a CSV label column, as read here
# Only an empty cell is a null (which the fast path never takes); "NA", "nan" and the
# like are values, as in service.datasets.parsing.
NULL_VALUES = [""]
CSV_KINDS = {pa.int64(): "integer", pa.float64(): "number"}  # feature types taken from CSV
try:  # glibc only; elsewhere memory is left to the allocator
    MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):
    MALLOC_TRIM = None
INT64_FAILED = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to int64: ")


class RowSink(Protocol):
    """Where the fast path sends the matrix: (b, n_x) float64 C-order rows, in file order.

    The rows are only lent for the call (their memory holds the next batch's): a sink
    copies what it keeps. ``reset`` forgets every row so far: the file is read again.
    """

    def write(self, values: np.ndarray) -> None: ...

    def reset(self) -> None: ...


class Abandon(Exception):
    """The fast path is not sure: service.datasets.parsing reads the file and decides."""


class Restart(Exception):
    """A column's type was revised: the stream starts over from the first row."""


@dataclass(frozen=True)
class StreamedDataset:
    """A ParsedDataset whose matrix went to a sink: everything but X."""

    features: list[str]  # feature column names, in file order
    label: str
    label_type: str  # integer, number, string or boolean
    classes: list[Any]  # sorted distinct labels, as plain JSON values
    y_index: np.ndarray  # (m,) int32: each row's index into classes
    class_counts: dict[str, int]  # str(label) -> rows
    schema: list[dict[str, str]]  # [{"name", "type", "role"}] in file order
    rows: int  # m


def open_dataset(
    path: Path, *, format: str, label: str | None, settings: Settings
) -> "DatasetStream | None":
    """The upload at ``path`` as a stream of typed batches, or None if its header or
    column types are anything the fast path is not sure of. Use it in a ``with`` block."""
    opener = {"csv": CsvStream, "parquet": ParquetStream}[format]
    try:
        return opener(path, label=label, settings=settings)
    except (Abandon, ServiceError, pa.ArrowException, OSError, UnicodeDecodeError):
        return None


def parse_fast(
    path: Path, *, format: str, label: str | None, settings: Settings
) -> ParsedDataset | None:
    """The fast path with the matrix gathered in memory: what parse_dataset gives, or None."""
    stream = open_dataset(path, format=format, label=label, settings=settings)
    if stream is None:
        return None
    matrix = MatrixSink()
    with stream:
        streamed = stream.read(matrix)
    if streamed is None:
        return None
    return ParsedDataset(
        features=streamed.features,
        X=matrix.matrix(len(streamed.features)),
        label=streamed.label,
        label_type=streamed.label_type,
        classes=streamed.classes,
        y_index=streamed.y_index,
        class_counts=streamed.class_counts,
        schema=streamed.schema,
    )


class MatrixSink:
    """A RowSink that keeps the rows, for a matrix in memory."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []

    def write(self, values: np.ndarray) -> None:
        self.blocks.append(values.copy())

    def reset(self) -> None:
        self.blocks = []

    def matrix(self, n_x: int) -> np.ndarray:
        """(m, n_x) float64, C order."""
        if not self.blocks:
            return np.empty((0, n_x), dtype=np.float64)
        return np.concatenate(self.blocks)


class DiscardSink:
    """A RowSink that keeps nothing: for checking a file whose dataset is stored already."""

    def write(self, values: np.ndarray) -> None:
        pass

    def reset(self) -> None:
        pass


class DatasetStream(AbstractContextManager["DatasetStream"]):
    """An upload's columns, and ``read``: its rows to a sink, or None at the first doubt."""

    names: list[str]  # every column, in file order
    label: str
    kinds: dict[str, str]  # feature name -> integer, number or boolean

    def __init__(self, *, settings: Settings):
        self.max_rows = settings.max_rows
        self.max_classes = settings.max_classes

    @property
    def features(self) -> list[str]:
        return [name for name in self.names if name != self.label]

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The file's rows in typed record batches, columns by their names (run in the
        Prefetcher's thread; may raise Restart)."""
        raise NotImplementedError

    def label_values(self, distinct: pa.ChunkedArray) -> tuple[Any, str]:
        """The distinct labels as service.datasets.parsing reads labels: (values, type name)."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the file."""
        raise NotImplementedError

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        _give_back_memory()

    def read(self, sink: RowSink) -> StreamedDataset | None:
        """Send the matrix to ``sink`` batch by batch; the rest of the dataset, or None
        if anything in the file is not sure to read as service.datasets.parsing reads it (the
        sink may then have had some rows: drop them)."""
        try:
            for _ in range(MAX_RESTARTS + 1):
                try:
                    return self._read(sink)
                except Restart:
                    sink.reset()
            return None
        except (Abandon, ServiceError, pa.ArrowException, UnicodeDecodeError):
            return None

    def _read(self, sink: RowSink) -> StreamedDataset:
        features = self.features
        rows = 0
        block = np.empty((0, len(features)), dtype=np.float64)  # (b, n_x), reused
        labels = LabelCodes(max_distinct=self.max_classes)
        with Prefetcher(self.batches(), depth=PREFETCH) as batches:
            for batch in batches:
                rows += batch.num_rows
                if rows > self.max_rows:
                    raise Abandon("max_rows")
                if batch.num_rows > len(block):
                    block = np.empty((batch.num_rows, len(features)), dtype=np.float64)
                sink.write(_matrix_rows(batch, features, block))  # (b, n_x)
                labels.add(batch.column(self.label))
        if rows < 2:
            raise Abandon("rows")
        distinct, codes = labels.distinct_and_codes()
        values, label_type = self.label_values(pa.chunked_array([distinct]))
        classes, class_of_distinct = parsing.classes_of(
            self.label, values, max_classes=self.max_classes
        )
        y_index = class_of_distinct[codes].astype(np.int32, copy=False)  # (m,)
        counts = np.bincount(y_index, minlength=len(classes))
        types = self.kinds | {self.label: label_type}
        return StreamedDataset(
            features=features,
            label=self.label,
            label_type=label_type,
            classes=classes,
            y_index=y_index,
            class_counts={str(c): int(n) for c, n in zip(classes, counts, strict=True)},
            schema=[
                {
                    "name": name,
                    "type": types[name],
                    "role": "label" if name == self.label else "feature",
                }
                for name in self.names
            ],
            rows=rows,
        )


class LabelCodes:
    """The label column as it streams by: each row's code (4 bytes) into the distinct
    labels seen, of which there may be at most ``max_distinct`` (else Abandon)."""

    def __init__(self, *, max_distinct: int):
        self.max_distinct = max_distinct
        self.code_of: dict[Any, int] = {}  # a label value -> its code
        self.value_type: pa.DataType | None = None
        self.chunks: list[np.ndarray] = []  # (b,) int32 codes of each batch's rows

    def add(self, column: pa.Array) -> None:
        if column.null_count:
            raise Abandon("missing label")
        if not pa.types.is_dictionary(column.type):
            column = pc.dictionary_encode(column)
        self.value_type = column.type.value_type
        # The batch's own dictionary is small (else Abandon): map it onto ours.
        ours = np.array(
            [self.code_of.setdefault(v, len(self.code_of)) for v in column.dictionary.to_pylist()],
            dtype=np.int32,
        )
        if len(self.code_of) > self.max_distinct:  # maybe fewer classes: the parser says
            raise Abandon("max_classes")
        self.chunks.append(ours[_view(column.indices.cast(pa.int32()), np.int32)])

    def distinct_and_codes(self) -> tuple[pa.Array, np.ndarray]:
        """(the distinct labels that some row holds, (m,) each row's index into them)."""
        codes = np.concatenate(self.chunks)
        # A Parquet dictionary may hold values no row uses (an unused category): not labels.
        used = np.flatnonzero(np.bincount(codes, minlength=len(self.code_of)))
        renumbered = np.zeros(len(self.code_of), dtype=np.int32)
        renumbered[used] = np.arange(len(used), dtype=np.int32)
        values = list(self.code_of)
        distinct = pa.array([values[i] for i in used], type=self.value_type)
        return distinct, renumbered[codes]


class CsvStream(DatasetStream):
    """A CSV file whose feature columns are all integers or floats."""

    def __init__(self, path: Path, *, label: str | None, settings: Settings):
        super().__init__(settings=settings)
        self.path = path
        parsing.refuse_other_encodings(path)
        inferred = _first_block_schema(path)
        self.raw_names = inferred.names
        self.names = [name.strip() for name in self.raw_names]
        parsing.check_columns(self.names, settings.max_columns)
        self.label = _label_of(self.names, label)
        self.types: dict[str, pa.DataType] = {}  # by raw name, as Arrow wants them
        self.kinds = {}
        for raw, name in zip(self.raw_names, self.names, strict=True):
            if name == self.label:
                self.types[raw] = LABEL_TEXT
            else:
                self.types[raw] = inferred.field(raw).type
                self.kinds[name] = _kind(CSV_KINDS.get(self.types[raw]))
        self.block_bytes = QUOTE_FREE_BLOCK_BYTES if _quote_free(path) else parsing.BLOCK_BYTES
        self.input: PacedFile | None = None
        self.reader: pv.CSVStreamingReader | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        self.close()  # the last reading's, if this one starts over
        # Decoded one block at a time here, in the Prefetcher's thread (with threads of
        # its own Arrow would decode ahead as well), from a file it may read only a
        # couple of blocks ahead.
        self.input = PacedFile(self.path)
        try:
            self.reader = pv.open_csv(
                self.input,
                read_options=parsing.csv_read_options(
                    block_size=self.block_bytes, use_threads=False
                ),
                convert_options=pv.ConvertOptions(column_types=self.types, null_values=NULL_VALUES),
            )
            for batch in self.reader:
                self.input.took_block()
                yield batch.rename_columns(self.names)
        except pa.ArrowInvalid as error:
            self._retype(error)
            raise

    def _retype(self, error: pa.ArrowInvalid) -> None:
        """Restart if an int64 column met a cell that is not an integer (a float, say)."""
        failed = INT64_FAILED.match(str(error))
        if failed is None:
            return
        raw = self.raw_names[int(failed[1])]
        if self.types[raw] == pa.int64():
            self.types[raw] = pa.float64()
            self.kinds[raw.strip()] = "number"
            raise Restart from None

    def label_values(self, distinct: pa.ChunkedArray) -> tuple[Any, str]:
        return parsing.label_values(self.label, distinct, from_text=True)

    def close(self) -> None:
        if self.input is not None:
            self.input.close()  # first: a read waiting for its turn returns at once
        if self.reader is not None:
            self.reader.close()


class ParquetStream(DatasetStream):
    """A Parquet file whose feature columns are integers, floats, decimals or booleans."""

    def __init__(self, path: Path, *, label: str | None, settings: Settings):
        super().__init__(settings=settings)
        self.file = pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
        try:
            schema = self.file.schema_arrow
            self.names = list(schema.names)
            parsing.check_columns(self.names, settings.max_columns)
            if self.file.metadata.num_rows > settings.max_rows:
                raise Abandon("max_rows")
            self.label = _label_of(self.names, label)
            if not _is_label_type(schema.field(self.label).type):
                raise Abandon("label type")
            self.kinds = {
                field.name: _kind(parsing.numeric_kind(field.type))  # None for dictionaries
                for field in schema
                if field.name != self.label
            }
        except BaseException:
            self.file.close()
            raise

    def batches(self) -> Iterator[pa.RecordBatch]:
        rows_per_batch = max(1024, PARQUET_BATCH_BYTES // (8 * len(self.features)))
        yield from self.file.iter_batches(batch_size=rows_per_batch, use_threads=True)

    def label_values(self, distinct: pa.ChunkedArray) -> tuple[Any, str]:
        return parsing.label_values(self.label, distinct, from_text=False)

    def close(self) -> None:
        self.file.close()


# Helpers ---------------------------------------------------------------------------------------


def _matrix_rows(batch: pa.RecordBatch, features: list[str], rows: np.ndarray) -> np.ndarray:
    """The batch's feature columns as (b, n_x) float64 C-order rows, written into ``rows``
    (reused from batch to batch: fresh memory would be page-faulted in each time);
    Abandon on a missing or non-finite value."""
    rows = rows[: batch.num_rows]  # (b, n_x)
    for j, name in enumerate(features):
        column = batch.column(name)
        if column.null_count:
            raise Abandon("missing value")
        if column.type != pa.float64():
            # As service.datasets.parsing converts: large integers round, booleans are 0 and 1.
            column = pc.cast(column, pa.float64(), safe=False)
        rows[:, j] = _view(column, np.float64)
    if not np.isfinite(rows).all():
        raise Abandon("not finite")
    return rows


def _view(array: pa.Array, dtype: Any) -> np.ndarray:
    """(len(array),) a numpy view of a primitive array without nulls.

    Array.to_numpy would do, through pyarrow's pandas conversion: tens of MB more
    the first time."""
    dtype = np.dtype(dtype)
    data = array.buffers()[1]
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _first_block_schema(path: Path) -> pa.Schema:
    """The CSV header's names and the types Arrow infers from the parser's first block.

    Arrow's first block is the file's first BLOCK_BYTES up to the last line end in them
    (quotes or not: it looks for line ends only); the rows after it are not read.
    """
    with pa.OSFile(str(path)) as file:
        head = file.read_buffer(parsing.BLOCK_BYTES)
    if head.size == parsing.BLOCK_BYTES:
        tail = head.slice(max(head.size - LINE_SEARCH_BYTES, 0)).to_pybytes()  # rows are short
        cut = max(tail.rfind(b"\n"), tail.rfind(b"\r"))
        if cut < 0:
            raise Abandon("row longer than the search")
        head = head.slice(0, head.size - len(tail) + cut + 1)
    options = parsing.csv_read_options(use_threads=False)
    convert = pv.ConvertOptions(null_values=NULL_VALUES)
    with pv.open_csv(pa.BufferReader(head), read_options=options, convert_options=convert) as block:
        return block.schema


def _quote_free(path: Path) -> bool:
    """Whether no quote character follows the header's first line end."""
    buffer = bytearray(SCAN_BYTES)
    in_header = True
    with path.open("rb", buffering=0) as file:
        while size := file.readinto(buffer):
            start = 0
            if in_header:
                ends = [buffer.find(b"\n", 0, size), buffer.find(b"\r", 0, size)]
                if max(ends) < 0:
                    continue
                start, in_header = min(end for end in ends if end >= 0), False
            if buffer.find(b'"', start, size) >= 0:
                return False
    return True


def _give_back_memory() -> None:
    """Return the memory a read freed to the system, where allocators would keep it.

    mimalloc (Arrow's) keeps freed pages a while and those of finished threads longer:
    hundreds of MB after a large Parquet file. glibc's malloc keeps what the reading
    threads freed in their arenas (tens of MB), so later uploads would start higher.
    """
    pa.default_memory_pool().release_unused()
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


def _label_of(names: list[str], label: str | None) -> str:
    if len(names) < 2:
        raise Abandon("columns")
    label = names[-1] if label is None else label
    if label not in names:
        raise Abandon("label")
    return label


def _is_label_type(arrow_type: pa.DataType) -> bool:
    """Parquet label columns the fast path takes: numbers, booleans, text, or dictionaries
    of these (service.datasets.parsing says what is wrong with anything else)."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return parsing.numeric_kind(arrow_type) is not None or parsing.is_text(arrow_type)


def _kind(kind: str | None) -> str:
    if kind is None:
        raise Abandon("column type")
    return kind
