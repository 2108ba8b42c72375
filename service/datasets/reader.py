"""An uploaded CSV or Parquet file, read once as typed record batches, streamed, typed, validated.

Each feature column is typed as it is read, numeric or categorical, with its missing cells
counted (service.datasets.reader_columns has the rules); the label column (the last one
unless named) may hold numbers, strings or booleans, and every row needs one. The upload
may name columns to read as categorical (``categorical``) and columns to leave out
(``ignore``: not read, not stored). A file that breaks a rule is an Unprocessable (422)
whose detail names the column and the rows; a file past a configured size limit is a
PayloadTooLarge (413) naming the setting.

The file is read as a stream of record batches (CSV: pyarrow.csv.open_csv; Parquet:
ParquetFile.iter_batches), decoded in a thread of its own; each batch becomes rows of
the float64 (m, n_x) C-order matrix that go to a sink at once (the database, chunk by
chunk), and the label column a 4-byte code per row. A cell is a number or a level's
code, NaN where missing.

CSV cells that are empty or one of NULL_TOKENS (NA, N/A, NaN, nan, null, NULL, None) are
missing. CSV columns are typed as Arrow infers them from the first block (integers,
floats) or read as text for the text rules to decide. A typed column that meets a cell it
cannot take (a float among integers, a word, a non-finite number) is retyped, integers to
floats to text, and the stream starts over with the rows written so far dropped; so does
a text column whose kind a later batch rules out, and a numeric column named categorical
whose levels were not met in sorted order (read again, coded in that order).

The refusal is the one a reading of the whole file would give: the stream reads to the
end before it says anything about cells (a ragged row, bytes that are not UTF-8 or too
many rows later on come first), then checks the shape, the names the upload gave, the
feature columns in file order, the label column, the classes.
"""

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from service.core.errors import Unprocessable
from service.core.settings import Settings
from service.datasets.readahead import MatrixSink, PacedFile, first_block_schema, quote_free
from service.datasets.reader_errors import (
    RaggedRows,
    check_columns,
    csv_error,
    header_not_utf8,
    refuse_nested,
    refuse_other_encodings,
    too_many_rows,
)
from service.datasets.reader_stream import DatasetStream, ParsedDataset, StreamedDataset
from service.datasets.reader_types import CSV_NULL_VALUES, Restart

__all__ = ["DatasetStream", "ParsedDataset", "StreamedDataset", "open_dataset", "parse_dataset"]

FORMATS = ("csv", "parquet")
BLOCK_BYTES = 8 * 2**20  # CSV blocks with quotes in the body; no row may be longer
QUOTE_FREE_BLOCK_BYTES = 2**20  # CSV blocks when no quote can make rows depend on them
PARQUET_BATCH_BYTES = 8 * 2**20  # rows per Parquet batch: about this much matrix
PARQUET_BUFFER_BYTES = 64 * 2**10  # column chunks are read in pieces this big, not whole

# CSV text columns (the label, and features for the text rules) as Arrow reads them: each
# batch's distinct cells and an index per cell, which Arrow decodes faster than the cells.
TEXT = pa.dictionary(pa.int32(), pa.string())
CSV_CONVERT = {
    "null_values": CSV_NULL_VALUES,
    "strings_can_be_null": True,
    "quoted_strings_can_be_null": True,
}
CSV_TYPED = (pa.int64(), pa.float64())  # CSV feature types read as Arrow infers them
CONVERSION_FAILED = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (?:int64|double): "
)


def open_dataset(
    path: Path,
    *,
    format: str,
    label: str | None,
    settings: Settings,
    categorical: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> "DatasetStream":
    """The upload at ``path`` as a stream of typed batches; refusals of its header (or
    footer) are raised here, of its rows by ``read``. Use it in a ``with`` block.
    ``categorical``: columns to read as categories; ``ignore``: columns left out."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    opener = {"csv": CsvStream, "parquet": ParquetStream}[format]
    overrides = {"categorical": list(categorical), "ignore": list(ignore)}
    return opener(path, label=label, settings=settings, overrides=overrides)


def parse_dataset(
    path: Path,
    *,
    format: str,
    label: str | None,
    settings: Settings,
    categorical: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> ParsedDataset:
    """Read ``path`` (csv or parquet) with the matrix gathered in memory."""
    matrix = MatrixSink()
    overrides = {"categorical": categorical, "ignore": ignore}
    with open_dataset(path, format=format, label=label, settings=settings, **overrides) as stream:
        streamed = stream.read(matrix)
    return ParsedDataset(
        **{name: getattr(streamed, name) for name in StreamedDataset.__dataclass_fields__},
        X=matrix.matrix(len(streamed.features)),
    )


class CsvStream(DatasetStream):
    """A comma-separated UTF-8 file; cells are trimmed, an empty cell is missing."""

    from_text = True
    label_type = TEXT

    def __init__(self, path: Path, *, label: str | None, settings: Settings, **overrides: Any):
        super().__init__(label=label, settings=settings, **overrides)
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
        self.guessed = {name: inferred.field(raw).type for name, raw in self.raw_by_name.items()}
        for raw, name in zip(self.raw_names, self.names, strict=True):
            guess = inferred.field(raw).type
            if name not in self.read_names:
                continue
            if name == self.label and self.usable:
                self.types[raw] = TEXT
            else:  # text unless Arrow found integers or floats (or there is nothing to read)
                self.types[raw] = guess if guess in CSV_TYPED and self.usable else TEXT
        self.block_bytes = QUOTE_FREE_BLOCK_BYTES if quote_free(path) else BLOCK_BYTES
        self.input: PacedFile | None = None
        self.reader: pv.CSVStreamingReader | None = None

    @property
    def raw_by_name(self) -> dict[str, str]:
        return dict(zip(self.names, self.raw_names, strict=True))

    def feature_type(self, name: str) -> pa.DataType:
        return self.types[self.raw_by_name[name]]

    def declared_type(self, name: str) -> pa.DataType:
        return self.guessed[name]

    def retype(self, name: str) -> None:
        self.types[self.raw_by_name[name]] = TEXT

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
                convert_options=pv.ConvertOptions(
                    column_types=self.types, include_columns=list(self.types), **CSV_CONVERT
                ),
            )
            names = [name for name in self.names if name in self.read_names]
            for batch in self.reader:
                self.input.took_block()
                yield batch.rename_columns(names)
        except pa.ArrowInvalid as error:
            raise self._error(error, ragged) from None

    def _error(self, error: pa.ArrowInvalid, ragged: RaggedRows) -> Exception:
        """Restart with a column retyped (integers to floats to text) if a typed column
        met a cell it cannot take, or with BLOCK_BYTES blocks if the blocks were small;
        else the refusal."""
        failed = CONVERSION_FAILED.match(str(error))
        if failed is not None:
            raw = self.raw_names[int(failed[1])]
            self.types[raw] = pa.float64() if self.types[raw] == pa.int64() else TEXT
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

    def __init__(self, path: Path, *, label: str | None, settings: Settings, **overrides: Any):
        super().__init__(label=label, settings=settings, **overrides)
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
            yield from self.file.iter_batches(
                batch_size=rows_per_batch, columns=self.read_names, use_threads=True
            )
        except (pa.ArrowException, OSError) as error:
            raise Unprocessable(
                f"the Parquet file could not be read: {error}", field="file"
            ) from None

    def close(self) -> None:
        self.file.close()
