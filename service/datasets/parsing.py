"""An uploaded CSV or Parquet file as a feature matrix and a label column, validated.

Every feature column must hold numbers (integers, floats or booleans), all
present and finite; the label column (the last one unless named) may hold
numbers, strings or booleans. A file that breaks a rule is an Unprocessable
(422) whose detail names the column and the first bad row; a file past a
configured size limit is a PayloadTooLarge (413) naming the setting.

Rows are numbered from 1 for the first data row (the CSV header is not counted).
CSV files are read with every column as text so that the service, not a type
guess on the first block, decides what is a number, and so that an error can
quote the cell exactly as it was written. Cells are trimmed of surrounding
spaces (``1, 2, 3`` reads as numbers; header names too), an empty cell is a
missing value, ``true``/``false`` are booleans, and ``nan``/``inf`` are read as
numbers and then refused as not finite.

This module is the referee: exact, and the author of every refusal, but it holds
the file's text and its matrix at once. Uploads are first read by
service.datasets.fast_parsing, which streams typed record batches and steps aside (for
this module to decide) whenever it meets anything it is not sure to read alike.
"""

import codecs
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from service.core.errors import PayloadTooLarge, Unprocessable
from service.core.settings import Settings

FORMATS = ("csv", "parquet")
ROW_NOTE = "row 1 is the first data row"
INT64_MAX = 2**63 - 1  # labels are stored and served as int64
BLOCK_BYTES = 8 * 2**20  # CSV is parsed in blocks of this size; no row may be longer
# Marks of text that is not UTF-8 (the UTF-32 ones first: they begin like UTF-16's).
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


@dataclass(frozen=True)
class ParsedDataset:
    """A validated dataset: m rows, n_x features and one label per row."""

    features: list[str]  # feature column names, in file order
    X: np.ndarray  # (m, n_x) float64, C order
    label: str  # the label column's name
    label_type: str  # integer, number, string or boolean
    classes: list[Any]  # sorted distinct labels, as plain JSON values
    y_index: np.ndarray  # (m,) int32: each row's index into classes
    class_counts: dict[str, int]  # str(label) -> rows
    schema: list[dict[str, str]]  # [{"name", "type", "role": feature|label}] in file order

    @property
    def rows(self) -> int:
        return self.X.shape[0]

    @property
    def labels(self) -> np.ndarray:
        """(m,) the label column's values, in the dataset's own type."""
        return np.asarray(self.classes, dtype=object)[self.y_index]


def parse_dataset(
    path: Path, *, format: str, label: str | None, settings: Settings
) -> ParsedDataset:
    """Read ``path`` (csv or parquet) and validate it; ``label`` defaults to the last column."""
    if format == "csv":
        table = read_csv(path, max_rows=settings.max_rows, max_columns=settings.max_columns)
    elif format == "parquet":
        table = read_parquet(path, max_rows=settings.max_rows, max_columns=settings.max_columns)
    else:
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    return dataset_from_table(
        table, label=label, max_classes=settings.max_classes, from_text=format == "csv"
    )


# Reading ---------------------------------------------------------------------------------------


def read_csv(path: Path, *, max_rows: int, max_columns: int) -> pa.Table:
    """Every column of a comma-separated UTF-8 file as text (nulls for empty cells).

    The body is read block by block, so a file past ``max_rows`` stops at the block
    that passes it.
    """
    refuse_other_encodings(path)
    raw_names = csv_header(path)
    names = [name.strip() for name in raw_names]
    check_columns(names, max_columns)
    convert = pv.ConvertOptions(
        column_types=dict.fromkeys(raw_names, pa.string()),
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    batches = []
    rows = 0
    try:
        with pv.open_csv(path, read_options=csv_read_options(), convert_options=convert) as reader:
            for batch in reader:
                rows += batch.num_rows
                if rows > max_rows:
                    raise _too_many_rows(f"more than {max_rows:,}", max_rows)
                batches.append(batch)
            schema = reader.schema
    except pa.ArrowInvalid as error:
        raise _csv_error(path, error) from None
    return pa.Table.from_batches(batches, schema).rename_columns(names)


def csv_header(path: Path) -> list[str]:
    """The header's column names (reading the first block only)."""
    try:
        with pv.open_csv(path, read_options=csv_read_options()) as reader:
            return list(reader.schema.names)
    except pa.ArrowInvalid as error:
        raise _csv_error(path, error) from None
    except UnicodeDecodeError:
        raise Unprocessable(
            "the CSV header is not valid UTF-8 text; save the file as UTF-8", field="file"
        ) from None


def _csv_error(path: Path, error: pa.ArrowInvalid) -> Unprocessable:
    """What went wrong, in the file's own terms (which row, which line)."""
    message = str(error)
    if "Expected" in message and "columns, got" in message:
        # Bytes that are not text at all (a zip, an image) come here too: say that first.
        return _not_utf8(path) or _ragged_row(path) or _unreadable(message)
    if "invalid UTF8" in message or "UTF8 string too short" in message:  # the latter: a cut BOM
        return _not_utf8(path) or _unreadable(message)
    if "Empty CSV file" in message:
        return Unprocessable(
            "the CSV file has no data rows (a header alone is not a dataset)", field="file"
        )
    if "straddl" in message:
        return Unprocessable(
            f"a row of the CSV file is longer than {BLOCK_BYTES // 2**20} MiB", field="file"
        )
    return _unreadable(message)


def _unreadable(message: str) -> Unprocessable:
    shown = message if len(message) <= 200 else f"{message[:200]}..."
    return Unprocessable(f"the CSV file could not be read: {shown}", field="file")


def _not_utf8(path: Path) -> Unprocessable | None:
    line = _first_invalid_utf8_line(path)
    if line is None:
        return None
    return Unprocessable(
        f"the CSV file is not valid UTF-8 text (line {line} of the file, counting the header "
        "as line 1); save it as UTF-8",
        field="file",
    )


def refuse_other_encodings(path: Path) -> None:
    with path.open("rb") as file:
        head = file.read(4)
    for mark, encoding in BYTE_ORDER_MARKS:
        if head.startswith(mark):
            raise Unprocessable(f"the CSV file is {encoding} text; save it as UTF-8", field="file")


def csv_read_options(*, block_size: int | None = None, **options: Any) -> pv.ReadOptions:
    """How CSV files are read here (and by service.datasets.fast_parsing): BLOCK_BYTES blocks."""
    return pv.ReadOptions(block_size=block_size or BLOCK_BYTES, **options)


def _ragged_row(path: Path) -> Unprocessable | None:
    """Re-read the file serially (so rows are numbered) up to its first ragged row."""
    found: list[Any] = []

    def stop_at(row: Any) -> str:
        found.append(row)
        return "error"

    try:
        with pv.open_csv(
            path,
            read_options=csv_read_options(use_threads=False, autogenerate_column_names=True),
            parse_options=pv.ParseOptions(invalid_row_handler=stop_at),
            convert_options=pv.ConvertOptions(check_utf8=False),
        ) as reader:
            for _ in reader:
                pass
    except pa.ArrowInvalid:
        pass
    if not found or found[0].number is None:
        return None
    row = found[0]
    # The handler counts the header as record 1; data rows count from 1 after it.
    data_row = row.number - 1
    return Unprocessable(
        f"CSV row {data_row} has {_count(row.actual_columns, 'field')} but the header has "
        f"{_count(row.expected_columns, 'column')} ({ROW_NOTE})",
        field="file",
        row=data_row,
    )


def _first_invalid_utf8_line(path: Path) -> int | None:
    """The 1-based line of the first bytes that are not UTF-8, reading 1 MiB at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0
    with path.open("rb") as file:
        while chunk := file.read(2**20):
            carried = len(decoder.getstate()[0])  # a character's first bytes: never a newline
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                return lines_before + chunk[: max(error.start - carried, 0)].count(b"\n") + 1
            lines_before += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)  # a character cut off by the end of the file
    except UnicodeDecodeError:
        return lines_before + 1
    return None


def read_parquet(path: Path, *, max_rows: int, max_columns: int) -> pa.Table:
    """The file's flat columns; nested types (lists, structs, maps) are refused up front."""
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as error:
        raise Unprocessable(
            f"the body is not a readable Parquet file: {error}", field="file"
        ) from None
    names = list(schema.names)
    check_columns(names, max_columns)
    for field in schema:
        if pa.types.is_nested(field.type):
            raise Unprocessable(
                f'column "{field.name}" has a nested type ({str(field.type).split("<")[0]}); '
                "only flat columns of numbers, strings or booleans can be used",
                field="file",
                column=field.name,
            )
    rows = parquet.metadata.num_rows
    if rows > max_rows:
        raise _too_many_rows(f"{rows:,}", max_rows)
    try:
        return parquet.read()
    except (pa.ArrowException, OSError) as error:
        raise Unprocessable(f"the Parquet file could not be read: {error}", field="file") from None


def check_columns(names: list[str], max_columns: int) -> None:
    if len(names) > max_columns:
        raise PayloadTooLarge(
            f"the file has {len(names):,} columns; at most {max_columns:,} are allowed "
            "(BACKPROP_MAX_COLUMNS, max_columns)",
            limit=max_columns,
            setting="max_columns",
        )
    for position, name in enumerate(names, start=1):
        if name == "":
            raise Unprocessable(
                f"column {position} has no name; every column needs one in the header",
                field="file",
            )
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        listed = ", ".join(f'"{name}"' for name in duplicates)
        raise Unprocessable(f"column names must be unique; repeated: {listed}", field="file")


def _too_many_rows(count: str, max_rows: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the file has {count} rows; at most {max_rows:,} are allowed "
        "(BACKPROP_MAX_ROWS, max_rows)",
        limit=max_rows,
        setting="max_rows",
    )


# Validating ------------------------------------------------------------------------------------


def dataset_from_table(
    table: pa.Table, *, label: str | None, max_classes: int, from_text: bool
) -> ParsedDataset:
    """Features as a float64 matrix and labels as class indices; ``from_text`` for CSV columns."""
    names = table.column_names
    if table.num_rows == 0:
        raise Unprocessable(
            "the file has no data rows (a header alone is not a dataset)", field="file"
        )
    if len(names) < 2:
        raise Unprocessable(
            f"the file has {_count(len(names), 'column')}; a dataset needs at least one "
            "feature column and a label column (CSV columns are separated by commas)",
            field="file",
        )
    label = names[-1] if label is None else label
    if label not in names:
        listed = ", ".join(f'"{name}"' for name in names)
        raise Unprocessable(
            f'label column "{label}" is not in the file; its columns are {listed}',
            field="label",
            columns=names,
        )
    if table.num_rows < 2:
        raise Unprocessable("the file has 1 data row; training needs at least 2", field="file")

    features = [name for name in names if name != label]
    X = np.empty((table.num_rows, len(features)), dtype=np.float64)  # (m, n_x)
    types = {}
    for j, name in enumerate(features):
        values, types[name] = feature_values(name, table.column(name), from_text=from_text)
        X[:, j] = values
    values, types[label] = label_values(label, table.column(label), from_text=from_text)
    classes, y_index = classes_of(label, values, max_classes=max_classes)
    counts = np.bincount(y_index, minlength=len(classes))
    return ParsedDataset(
        features=features,
        X=X,
        label=label,
        label_type=types[label],
        classes=classes,
        y_index=y_index,
        class_counts={str(c): int(n) for c, n in zip(classes, counts, strict=True)},
        schema=[
            {"name": name, "type": types[name], "role": "label" if name == label else "feature"}
            for name in names
        ],
    )


def feature_values(name: str, column: pa.ChunkedArray, *, from_text: bool) -> tuple[Any, str]:
    """(m,) float64 values of a feature column and its type (integer, number or boolean)."""
    column = decoded(column)
    kind = numeric_kind(column.type)
    if kind is not None:
        numbers = column
    elif is_text(column.type):
        numbers, kind = _numbers_from_text(name, column)
    else:
        _refuse_missing(name, column, "value is missing")
        shown = _shown(str(column[0].as_py()))
        raise _cell_error(name, 0, f"{shown} ({column.type}) is not a number")
    _refuse_missing(name, numbers, "value is missing")
    floats = pc.cast(numbers, pa.float64(), safe=False)  # large integers round, as in NumPy
    _refuse_non_finite(name, floats, column, "value")
    return floats.to_numpy(), kind


def label_values(name: str, column: pa.ChunkedArray, *, from_text: bool) -> tuple[Any, str]:
    """The label column as integers, numbers, strings or booleans, and that type's name."""
    column = decoded(column)
    _refuse_missing(name, column, "label is missing")
    kind = numeric_kind(column.type)
    if kind is None and is_text(column.type):
        if from_text:
            return _labels_from_text(name, column)
        return column.cast(pa.string()), "string"
    if kind is None:
        raise Unprocessable(
            f'label column "{name}" has the type {column.type}; '
            "labels must be numbers, strings or booleans",
            field="label",
            column=name,
        )
    if kind == "integer" and pc.max(column).as_py() > INT64_MAX:
        raise Unprocessable(
            f'label column "{name}" has integers past 2**63 - 1; use smaller codes or text',
            field="label",
        )
    if kind == "number":
        column = pc.cast(column, pa.float64(), safe=False)
        _refuse_non_finite(name, column, column, "label")
        column = pc.add(column, 0.0)  # -0.0 and 0.0 are the same class
    return column, kind


def classes_of(name: str, labels: pa.ChunkedArray, *, max_classes: int) -> tuple[list[Any], Any]:
    """(sorted distinct labels as JSON values, (m,) int32 index of each row's label)."""
    distinct = pc.unique(labels)
    if len(distinct) > max_classes:
        raise Unprocessable(
            f'label column "{name}" has {len(distinct):,} distinct values; at most '
            f"{max_classes:,} classes are allowed (BACKPROP_MAX_CLASSES, max_classes). "
            "Is it the right label column?",
            field="label",
            limit=max_classes,
            setting="max_classes",
        )
    if len(distinct) < 2:
        raise Unprocessable(
            f'label column "{name}" has a single value ({distinct[0].as_py()!r}); '
            "training needs at least 2 classes",
            field="label",
        )
    distinct = distinct.take(pc.sort_indices(distinct))
    y_index = pc.index_in(labels, value_set=distinct).to_numpy().astype(np.int32)
    classes = distinct.to_pylist()
    if pa.types.is_floating(distinct.type) and all(
        c.is_integer() and abs(c) <= 2**53 for c in classes
    ):
        classes = [int(c) for c in classes]  # 0.0 and 1.0 read as the classes 0 and 1
    return classes, y_index


# Text columns (CSV) ----------------------------------------------------------------------------


def _numbers_from_text(name: str, text: pa.ChunkedArray) -> tuple[pa.ChunkedArray, str]:
    """Cast text to integers, numbers or booleans, whichever fits every cell, or say which fails."""
    trimmed = pc.utf8_trim_whitespace(text)
    for target, kind in (
        (pa.int64(), "integer"),
        (pa.float64(), "number"),
        (pa.bool_(), "boolean"),
    ):
        cast = _cast_or_none(trimmed, target)
        if cast is not None:
            return cast, kind
    # A cell of spaces alone is empty once trimmed: missing, like an empty cell.
    blank = pc.or_kleene(pc.is_null(text), pc.equal(trimmed, ""))
    first_missing = _first_index(blank, True)
    first_bad, expected = _first_unparsable(trimmed)
    if first_missing is not None and (first_bad is None or first_missing <= first_bad):
        raise _cell_error(name, first_missing, "value is missing")
    if first_bad is None:  # not expected: some cast failed, yet each cell parses alone
        raise Unprocessable(
            f'column "{name}" holds values that are not numbers', field="file", column=name
        )
    raise _cell_error(name, first_bad, f'"{_shown(text[first_bad].as_py())}" is not {expected}')


def _labels_from_text(name: str, text: pa.ChunkedArray) -> tuple[pa.ChunkedArray, str]:
    """Labels written as integers, numbers or booleans keep that type; anything else is text."""
    trimmed = pc.utf8_trim_whitespace(text)
    blank = _first_index(pc.equal(trimmed, ""), True)  # spaces alone: missing, as features
    if blank is not None:
        raise _cell_error(name, blank, "label is missing")
    for target, kind in ((pa.int64(), "integer"), (pa.float64(), "number")):
        numbers = _cast_or_none(trimmed, target)
        if numbers is not None:
            return label_values(name, numbers, from_text=False)[0], kind
    words = pc.utf8_lower(trimmed)
    if pc.all(pc.is_in(words, value_set=pa.array(["true", "false"]))).as_py():
        return pc.equal(words, "true"), "boolean"
    return trimmed, "string"


def _first_unparsable(trimmed: pa.ChunkedArray) -> tuple[int | None, str]:
    """Index of the first cell that is not a number, or not a boolean in a column that
    starts with booleans; and what was expected ("a number" or "a boolean").

    A cast of a slice succeeds only if every cell in it does, so the first failing
    chunk is halved until the cell is found: O(m) casts' worth of work in all.
    """
    first = _first_index(pc.is_valid(trimmed), True)
    if first is None:
        return None, "a number"
    looks_boolean = _cast_or_none(trimmed.slice(first, 1), pa.float64()) is None and (
        _cast_or_none(trimmed.slice(first, 1), pa.bool_()) is not None
    )
    target, expected = (pa.bool_(), "a boolean") if looks_boolean else (pa.float64(), "a number")
    offset = 0
    for chunk in trimmed.chunks:
        if _cast_or_none(chunk, target) is None:
            low, high = 0, len(chunk)  # cells [0, low) parse; [low, high) holds a bad one
            while high - low > 1:
                middle = (low + high) // 2
                if _cast_or_none(chunk.slice(low, middle - low), target) is None:
                    high = middle
                else:
                    low = middle
            return offset + low, expected
        offset += len(chunk)
    return None, expected


# Helpers ---------------------------------------------------------------------------------------


def decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary-encoded columns (Parquet categoricals) as plain values."""
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def numeric_kind(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    return None


def is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _cast_or_none(values: Any, target: pa.DataType) -> Any:
    try:
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _first_index(mask: Any, value: bool) -> int | None:
    index = pc.index(mask, pa.scalar(value)).as_py()
    return None if index < 0 else index


def _refuse_missing(name: str, column: pa.ChunkedArray, reason: str) -> None:
    if column.null_count:
        raise _cell_error(name, _first_index(pc.is_null(column), True), reason)


def _refuse_non_finite(
    name: str, floats: pa.ChunkedArray, source: pa.ChunkedArray, what: str
) -> None:
    row = _first_index(pc.is_finite(floats), False)
    if row is not None:
        written = source[row].as_py()
        shown = f'"{_shown(written)}"' if isinstance(written, str) else f"{written}"
        raise _cell_error(name, row, f"{what} {shown} is not finite")


def _shown(text: str, limit: int = 40) -> str:
    """A cell as an error message quotes it: at most ``limit`` characters."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _cell_error(name: str, index: int, reason: str) -> Unprocessable:
    row = index + 1
    return Unprocessable(
        f'column "{name}" row {row}: {reason} ({ROW_NOTE})', field="file", column=name, row=row
    )
