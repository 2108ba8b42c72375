"""The refusals of service.datasets.reader: what is wrong with an upload, in the file's own terms.

Every message names what a user can find in their file: the column, the row (row 1
is the first data row; the CSV header is not counted) or the line, and the reason.
Arrow's own errors lack some of these; the helpers here add them from what the
reading already knows (the row Arrow's invalid-row handler saw) or from a cheap
byte scan (the first bytes that are not UTF-8), never from a second parse.
"""

import codecs
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from service.core.errors import PayloadTooLarge, Unprocessable

ROW_NOTE = "row 1 is the first data row"
# Marks of text that is not UTF-8 (the UTF-32 ones first: they begin like UTF-16's).
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


class RaggedRows:
    """An invalid-row handler for Arrow's CSV reader that remembers the first ragged row.

    Arrow's "Expected 3 columns, got 2" says neither which data row nor, for bytes that
    are not text, why; the handler sees the row's number as the (serial) read meets it.
    """

    def __init__(self) -> None:
        self.first: Any = None  # pyarrow.csv.InvalidRow

    def __call__(self, row: Any) -> str:
        if self.first is None:
            self.first = row
        return "error"


def refuse_other_encodings(path: Path) -> None:
    """UTF-16 and UTF-32 text (by its byte order mark) is refused before reading."""
    with path.open("rb") as file:
        head = file.read(4)
    for mark, encoding in BYTE_ORDER_MARKS:
        if head.startswith(mark):
            raise Unprocessable(f"the CSV file is {encoding} text; save it as UTF-8", field="file")


def header_not_utf8() -> Unprocessable:
    return Unprocessable(
        "the CSV header is not valid UTF-8 text; save the file as UTF-8", field="file"
    )


def csv_error(
    path: Path, error: pa.ArrowInvalid, *, ragged: RaggedRows, block_bytes: int
) -> Unprocessable:
    """What went wrong reading the CSV file at ``path``, in the file's own terms."""
    message = str(error)
    if "Expected" in message and "columns, got" in message:
        # Bytes that are not text at all (a zip, an image) come here too: say that first.
        return _not_utf8(path) or _ragged_row(ragged.first) or _unreadable(message)
    if "invalid UTF8" in message or "UTF8 string too short" in message:  # the latter: a cut BOM
        return _not_utf8(path) or _unreadable(message)
    if "Empty CSV file" in message:
        return Unprocessable(
            "the CSV file has no data rows (a header alone is not a dataset)", field="file"
        )
    if "straddl" in message:
        return Unprocessable(
            f"a row of the CSV file is longer than {block_bytes // 2**20} MiB", field="file"
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


def _ragged_row(row: Any) -> Unprocessable | None:
    if row is None or row.number is None:
        return None
    # Arrow counts the header as row 1; data rows count from 1 after it.
    data_row = row.number - 1
    return Unprocessable(
        f"CSV row {data_row} has {count(row.actual_columns, 'field')} but the header has "
        f"{count(row.expected_columns, 'column')} ({ROW_NOTE})",
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


def check_columns(names: list[str], max_columns: int) -> None:
    """The header's names: at most max_columns, each named, none twice."""
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
    duplicates = sorted(name for name, n in Counter(names).items() if n > 1)
    if duplicates:
        listed = ", ".join(f'"{name}"' for name in duplicates)
        raise Unprocessable(f"column names must be unique; repeated: {listed}", field="file")


def refuse_nested(schema: pa.Schema) -> None:
    """Parquet columns of nested types (lists, structs, maps) are refused, the first named."""
    for field in schema:
        if pa.types.is_nested(field.type):
            raise Unprocessable(
                f'column "{field.name}" has a nested type ({str(field.type).split("<")[0]}); '
                "only flat columns of numbers, strings or booleans can be used",
                field="file",
                column=field.name,
            )


def too_many_rows(rows: str, max_rows: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the file has {rows} rows; at most {max_rows:,} are allowed (BACKPROP_MAX_ROWS, max_rows)",
        limit=max_rows,
        setting="max_rows",
    )


def shape_error(names: list[str], label: str | None, rows: int) -> Unprocessable | None:
    """A file too small to be a dataset, or without the label column; checked in this order
    once the whole file has been read (so that a ragged row or bad bytes are said first)."""
    if rows == 0:
        return Unprocessable(
            "the file has no data rows (a header alone is not a dataset)", field="file"
        )
    if len(names) < 2:
        return Unprocessable(
            f"the file has {count(len(names), 'column')}; a dataset needs at least one "
            "feature column and a label column (CSV columns are separated by commas)",
            field="file",
        )
    if label not in names:
        listed = ", ".join(f'"{name}"' for name in names)
        return Unprocessable(
            f'label column "{label}" is not in the file; its columns are {listed}',
            field="label",
            columns=names,
        )
    if rows < 2:
        return Unprocessable("the file has 1 data row; training needs at least 2", field="file")
    return None


def override_error(
    names: list[str], label: str, *, categorical: list[str], ignore: list[str]
) -> Unprocessable | None:
    """What is wrong with the columns the upload named in ``categorical`` and ``ignore``:
    names that are not columns of the file, the label (always read, as classes), a column
    named in both, or no feature column left."""
    listed = ", ".join(f'"{name}"' for name in names)
    for field, given in (("categorical", categorical), ("ignore", ignore)):
        unknown = [name for name in dict.fromkeys(given) if name not in names]
        if unknown:
            which = ", ".join(f'"{name}"' for name in unknown)
            are = "is not a column" if len(unknown) == 1 else "are not columns"
            return Unprocessable(
                f"{field} names {which}, which {are} of the file; its columns are {listed}",
                field=field,
                columns=unknown,
            )
        if label in given:
            return Unprocessable(
                f'{field} names the label column "{label}"; the label is always read, '
                "as the classes (name another label column with label=)",
                field=field,
                columns=[label],
            )
    both = [name for name in dict.fromkeys(categorical) if name in ignore]
    if both:
        which = ", ".join(f'"{name}"' for name in both)
        return Unprocessable(
            f"{which} named in both categorical and ignore; a column is one or the other",
            field="ignore",
            columns=both,
        )
    if len(set(ignore)) >= len(names) - 1:
        return Unprocessable(
            "ignore leaves no feature column; a dataset needs at least one", field="ignore"
        )
    return None


def cell_error(name: str, index: int, reason: str) -> Unprocessable:
    """A refusal of one cell: ``index`` is its 0-based row, said 1-based."""
    row = index + 1
    return Unprocessable(
        f'column "{name}" row {row}: {reason} ({ROW_NOTE})', field="file", column=name, row=row
    )


def shown(text: str, limit: int = 40) -> str:
    """A cell as an error message quotes it: at most ``limit`` characters."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
