"""An uploaded CSV or Parquet file, read once as typed record batches, streamed, validated.

Every feature column must hold numbers (integers, floats or booleans), all present
and finite; the label column (the last one unless named) may hold numbers, strings
or booleans. A file that breaks a rule is an Unprocessable (422) whose detail names
the column and the first bad row (row 1 is the first data row); a file past a
configured size limit is a PayloadTooLarge (413) naming the setting.

The file is read as a stream of record batches (CSV: pyarrow.csv.open_csv; Parquet:
ParquetFile.iter_batches), decoded in a thread of its own; each batch becomes rows of
the float64 (m, n_x) C-order matrix that go to a sink at once (the database, chunk by
chunk), and the label column a 4-byte code per row. How each column is read and what
is wrong with it is service.datasets.reader_columns' table.

CSV columns are typed as Arrow infers them from the first block (integers, floats) or
read as text for the text rules to decide. A typed column that meets a cell it cannot
take (a float among integers, a word, an empty or non-finite cell) is retyped, integers
to floats to text, and the stream starts over with the rows written so far dropped;
text columns find and quote the first bad cell from their batch's row offset. A bad
file costs at most one more reading per column, never a second parser.

The refusal is the one a reading of the whole file would give: the stream reads to the
end before it says anything about cells (a ragged row, bytes that are not UTF-8 or too
many rows later on come first), then checks the shape, the feature columns in file
order (each its first bad row), the label column, the classes.
"""

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from service.core.errors import Unprocessable
from service.core.settings import Settings
from service.datasets.readahead import (
    MatrixSink,
    PacedFile,
    Prefetcher,
    RowSink,
    first_block_schema,
    give_back_memory,
    quote_free,
)
from service.datasets.reader_columns import (
    FeatureColumn,
    LabelColumn,
    Restart,
    Retype,
    TextColumn,
    feature_reader,
)
from service.datasets.reader_errors import (
    RaggedRows,
    check_columns,
    csv_error,
    header_not_utf8,
    refuse_nested,
    refuse_other_encodings,
    shape_error,
    too_many_rows,
)

FORMATS = ("csv", "parquet")
BLOCK_BYTES = 8 * 2**20  # CSV blocks with quotes in the body; no row may be longer
QUOTE_FREE_BLOCK_BYTES = 2**20  # CSV blocks when no quote can make rows depend on them
PARQUET_BATCH_BYTES = 8 * 2**20  # rows per Parquet batch: about this much matrix
PARQUET_BUFFER_BYTES = 64 * 2**10  # column chunks are read in pieces this big, not whole
PREFETCH = 4  # batches decoded ahead of the one being converted and stored

LABEL_TEXT = pa.dictionary(pa.int32(), pa.string())  # a CSV label column, as read here
# Only an empty cell is missing; "NA", "nan" and the like are values.
CSV_CONVERT = {"null_values": [""], "strings_can_be_null": True, "quoted_strings_can_be_null": True}
CSV_TYPED = (pa.int64(), pa.float64())  # CSV feature types read as Arrow infers them
CONVERSION_FAILED = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (?:int64|double): "
)


@dataclass(frozen=True)
class StreamedDataset:
    """A validated dataset whose matrix went to a sink: everything but X."""

    features: list[str]  # feature column names, in file order
    label: str
    label_type: str  # integer, number, string or boolean
    classes: list[Any]  # sorted distinct labels, as plain JSON values
    y_index: np.ndarray  # (m,) int32: each row's index into classes
    class_counts: dict[str, int]  # str(label) -> rows
    schema: list[dict[str, str]]  # [{"name", "type", "role": feature|label}] in file order
    rows: int  # m


@dataclass(frozen=True)
class ParsedDataset(StreamedDataset):
    """A validated dataset with its matrix in memory."""

    X: np.ndarray  # (m, n_x) float64, C order

    @property
    def labels(self) -> np.ndarray:
        """(m,) the label column's values, in the dataset's own type."""
        return np.asarray(self.classes, dtype=object)[self.y_index]


def open_dataset(
    path: Path, *, format: str, label: str | None, settings: Settings
) -> "DatasetStream":
    """The upload at ``path`` as a stream of typed batches; refusals of its header (or
    footer) are raised here, of its rows by ``read``. Use it in a ``with`` block."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    opener = {"csv": CsvStream, "parquet": ParquetStream}[format]
    return opener(path, label=label, settings=settings)


def parse_dataset(
    path: Path, *, format: str, label: str | None, settings: Settings
) -> ParsedDataset:
    """Read ``path`` (csv or parquet) with the matrix gathered in memory."""
    matrix = MatrixSink()
    with open_dataset(path, format=format, label=label, settings=settings) as stream:
        streamed = stream.read(matrix)
    return ParsedDataset(
        **{name: getattr(streamed, name) for name in StreamedDataset.__dataclass_fields__},
        X=matrix.matrix(len(streamed.features)),
    )


class DatasetStream(AbstractContextManager["DatasetStream"]):
    """An upload's columns, and ``read``: its rows to a sink, and the rest of the dataset."""

    names: list[str]  # every column, in file order
    label: str | None  # None if the file has no columns
    label_type: pa.DataType  # the label column's, as read
    from_text = False  # whether labels are typed from their text (CSV)

    def __init__(self, *, label: str | None, settings: Settings):
        self.max_rows = settings.max_rows
        self.max_classes = settings.max_classes
        self.asked_label = label
        self.viable: dict[str, list[str]] = {}  # text columns' kinds still possible, by name

    def _resolve_label(self) -> None:
        self.label = self.names[-1] if self.asked_label is None and self.names else self.asked_label

    @property
    def usable(self) -> bool:
        """Whether the file has a label column and a feature column to read."""
        return len(self.names) >= 2 and self.label in self.names

    @property
    def features(self) -> list[str]:
        return [name for name in self.names if name != self.label] if self.usable else []

    # Each format's: its rows in typed record batches, columns by name (in the Prefetcher's
    # thread; may raise Restart or a ServiceError); the type a feature column arrives as;
    # reading a column by the text rules from now on (CSV only); closing the file.
    def batches(self) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def feature_type(self, name: str) -> pa.DataType:
        raise NotImplementedError

    def retype(self, name: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        give_back_memory()

    def _column(self, name: str) -> FeatureColumn:
        if name in self.viable:  # a reading before this one ruled some kinds out
            return TextColumn(name, viable=list(self.viable[name]))
        return feature_reader(name, self.feature_type(name), strict=self.from_text)

    def read(self, sink: RowSink) -> StreamedDataset:
        """Send the matrix to ``sink`` batch by batch; the rest of the dataset, or the
        ServiceError that says what is wrong (the sink may then have had some rows)."""
        while True:
            columns = [self._column(name) for name in self.features]
            try:
                return self._read(sink, columns)
            except Retype as retyped:
                self.retype(retyped.name)
            except Restart:
                pass
            for column in columns:  # what this reading learned holds for the next
                if isinstance(column, TextColumn):
                    self.viable[column.name] = column.viable
            sink.reset()

    def _read(self, sink: RowSink, columns: list[FeatureColumn]) -> StreamedDataset:
        labels = None
        if self.usable:
            labels = LabelColumn(self.label, self.label_type, from_text=self.from_text)
        rows = 0
        live = len(columns)  # columns still read: those before the first one refused for good
        block = np.empty((0, len(columns)), dtype=np.float64)  # (b, n_x), reused
        with Prefetcher(self.batches(), depth=PREFETCH) as batches:
            for batch in batches:
                if rows + batch.num_rows > self.max_rows:
                    raise too_many_rows(f"more than {self.max_rows:,}", self.max_rows)
                if batch.num_rows > len(block):
                    # Reused from batch to batch: fresh memory would be page-faulted in each time.
                    block = np.empty((batch.num_rows, len(columns)), dtype=np.float64)
                values = block[: batch.num_rows]  # (b, n_x)
                for j, column in enumerate(columns[:live]):
                    column.take(batch.column(column.name), rows, values[:, j])
                    if column.settled:
                        live = j  # refused: columns after it (and the label) cannot say first
                        break
                if live == len(columns):
                    sink.write(values)
                    if labels is not None:
                        labels.take(batch.column(self.label), rows)
                rows += batch.num_rows
        if (error := shape_error(self.names, self.label, rows)) is not None:
            raise error
        for column in columns:
            if (error := column.problem()) is not None:
                raise error
        classes, y_index, label_type = labels.classes(max_classes=self.max_classes)
        counts = np.bincount(y_index, minlength=len(classes))
        types = {column.name: column.kind for column in columns} | {self.label: label_type}
        return StreamedDataset(
            features=self.features,
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


class CsvStream(DatasetStream):
    """A comma-separated UTF-8 file; cells are trimmed, an empty cell is missing."""

    from_text = True
    label_type = LABEL_TEXT

    def __init__(self, path: Path, *, label: str | None, settings: Settings):
        super().__init__(label=label, settings=settings)
        self.path = path
        refuse_other_encodings(path)
        ragged = RaggedRows()
        try:
            inferred = first_block_schema(
                path,
                read_options=pv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
                parse_options=pv.ParseOptions(invalid_row_handler=ragged),
                convert_options=pv.ConvertOptions(**CSV_CONVERT),
            )
            self.raw_names = list(inferred.names)
        except pa.ArrowInvalid as error:
            raise csv_error(path, error, ragged=ragged, block_bytes=BLOCK_BYTES) from None
        except UnicodeDecodeError:
            raise header_not_utf8() from None
        self.names = [name.strip() for name in self.raw_names]
        check_columns(self.names, settings.max_columns)
        self._resolve_label()
        self.types: dict[str, pa.DataType] = {}  # by raw name, as Arrow wants them
        for raw, name in zip(self.raw_names, self.names, strict=True):
            guess = inferred.field(raw).type
            if name == self.label and self.usable:
                self.types[raw] = LABEL_TEXT
            else:  # text unless Arrow found integers or floats (or there is nothing to read)
                self.types[raw] = guess if guess in CSV_TYPED and self.usable else pa.string()
        self.block_bytes = QUOTE_FREE_BLOCK_BYTES if quote_free(path) else BLOCK_BYTES
        self.input: PacedFile | None = None
        self.reader: pv.CSVStreamingReader | None = None

    def feature_type(self, name: str) -> pa.DataType:
        return self.types[self.raw_names[self.names.index(name)]]

    def retype(self, name: str) -> None:
        self.types[self.raw_names[self.names.index(name)]] = pa.string()

    def batches(self) -> Iterator[pa.RecordBatch]:
        self.close()  # the last reading's, if this one starts over
        # Decoded one block at a time here, in the Prefetcher's thread (with threads of
        # its own Arrow would decode ahead as well), from a file it may read only a
        # couple of blocks ahead.
        self.input = PacedFile(self.path)
        ragged = RaggedRows()
        try:
            self.reader = pv.open_csv(
                self.input,
                read_options=pv.ReadOptions(block_size=self.block_bytes, use_threads=False),
                parse_options=pv.ParseOptions(invalid_row_handler=ragged),
                convert_options=pv.ConvertOptions(column_types=self.types, **CSV_CONVERT),
            )
            for batch in self.reader:
                self.input.took_block()
                yield batch.rename_columns(self.names)
        except pa.ArrowInvalid as error:
            raise self._error(error, ragged) from None

    def _error(self, error: pa.ArrowInvalid, ragged: RaggedRows) -> Exception:
        """Restart with a column retyped (integers to floats to text) if a typed column
        met a cell it cannot take, or with BLOCK_BYTES blocks if the blocks were small;
        else the refusal."""
        failed = CONVERSION_FAILED.match(str(error))
        if failed is not None:
            raw = self.raw_names[int(failed[1])]
            self.types[raw] = pa.float64() if self.types[raw] == pa.int64() else pa.string()
            return Restart()
        if self.block_bytes < BLOCK_BYTES:
            # A row longer than a small block (a long header: "Empty CSV file"): only a
            # reading in BLOCK_BYTES blocks may refuse the file, as it always has.
            self.block_bytes = BLOCK_BYTES
            return Restart()
        return csv_error(self.path, error, ragged=ragged, block_bytes=BLOCK_BYTES)

    def close(self) -> None:
        if self.input is not None:
            self.input.close()  # first: a read waiting for its turn returns at once
        if self.reader is not None:
            self.reader.close()


class ParquetStream(DatasetStream):
    """A Parquet file of flat columns; nested types (lists, structs, maps) are refused."""

    def __init__(self, path: Path, *, label: str | None, settings: Settings):
        super().__init__(label=label, settings=settings)
        try:
            self.file = pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
            self.schema = self.file.schema_arrow
        except (pa.ArrowException, OSError) as error:
            raise Unprocessable(
                f"the body is not a readable Parquet file: {error}", field="file"
            ) from None
        try:
            self.names = list(self.schema.names)
            check_columns(self.names, settings.max_columns)
            refuse_nested(self.schema)
            rows = self.file.metadata.num_rows
            if rows > settings.max_rows:
                raise too_many_rows(f"{rows:,}", settings.max_rows)
            self._resolve_label()
            if self.usable:
                self.label_type = self.schema.field(self.label).type
        except BaseException:
            self.file.close()
            raise

    def feature_type(self, name: str) -> pa.DataType:
        return self.schema.field(name).type

    def batches(self) -> Iterator[pa.RecordBatch]:
        rows_per_batch = max(1024, PARQUET_BATCH_BYTES // (8 * max(len(self.names), 1)))
        try:
            yield from self.file.iter_batches(batch_size=rows_per_batch, use_threads=True)
        except (pa.ArrowException, OSError) as error:
            raise Unprocessable(
                f"the Parquet file could not be read: {error}", field="file"
            ) from None

    def close(self) -> None:
        self.file.close()
