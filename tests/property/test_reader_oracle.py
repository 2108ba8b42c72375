"""The reader (service.datasets.reader) against an independent oracle, on generated files.

The oracle reads CSV with Python's csv module and decides every cell with Python's
int() and float() behind regular expressions of what Arrow's parsers take; Parquet it
reads whole (pyarrow.parquet.read_table) and converts value by value in Python. It
applies the rules in their plainest form: a feature column is integers if every cell
is one, else numbers, else booleans; the first column (in file order) with a problem
is refused at its first bad row. The reader must give the same dataset (the matrix
bit for bit, schema, classes, counts) or the same refusal (detail, column and row).
Block sizes are made small, so that files span many blocks: types inferred from the
first block meet other cells later, labels arrive in many batches, columns are
retyped mid-file and the stream starts over.
"""

import contextlib
import csv
import io
import math
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.errors import ServiceError
from service.core.settings import Settings
from service.datasets import reader
from service.datasets.reader import ParsedDataset, parse_dataset
from tests.property.strategies import (
    DETERMINISTIC,
    UTF8_BOM,
    arrow_columns,
    csv_line,
    numeric_csv,
    numeric_tables,
)

PARSER_SETTINGS = Settings(database_url="sqlite://")
NOTE = "(row 1 is the first data row)"
INT64 = (-(2**63), 2**63 - 1)

fast = settings(DETERMINISTIC, max_examples=150)


@contextlib.contextmanager
def blocks(block: int, quote_free: int, parquet_batch: int = 8 * 2**20) -> Iterator[None]:
    """The reader reads CSV in blocks of these sizes (and Parquet in batches of about this)."""
    saved = reader.BLOCK_BYTES, reader.QUOTE_FREE_BLOCK_BYTES, reader.PARQUET_BATCH_BYTES
    reader.BLOCK_BYTES, reader.QUOTE_FREE_BLOCK_BYTES = block, quote_free
    reader.PARQUET_BATCH_BYTES = parquet_batch
    try:
        yield
    finally:
        reader.BLOCK_BYTES, reader.QUOTE_FREE_BLOCK_BYTES, reader.PARQUET_BATCH_BYTES = saved


# (the block, the block for files without quotes), in bytes: every generated row fits.
block_sizes = st.tuples(st.sampled_from([256, 1024, 8 * 2**20]), st.sampled_from([64, 512, 2**20]))


def read(data: bytes, *, format: str = "csv", label: str | None = None) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            return parse_dataset(path, format=format, label=label, settings=PARSER_SETTINGS)
        except ServiceError as error:
            return error


# The oracle -------------------------------------------------------------------------------------

INTEGER = re.compile(r"-?[0-9]+|0[xX][0-9a-fA-F]+")
DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
SPECIAL = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)


def as_integer(cell: str) -> int | None:
    if not INTEGER.fullmatch(cell):
        return None
    value = int(cell, 16) if cell[:2].lower() == "0x" else int(cell)
    return value if INT64[0] <= value <= INT64[1] else None


def as_number(cell: str) -> float | None:
    return float(cell) if DECIMAL.fullmatch(cell) or SPECIAL.fullmatch(cell) else None


def as_boolean(cell: str) -> bool | None:
    return {"true": True, "1": True, "false": False, "0": False}.get(cell.lower())


PARSERS = {"integer": as_integer, "number": as_number, "boolean": as_boolean}


class Refused(Exception):
    def __init__(self, detail: str):
        self.detail = detail


def cell_refusal(name: str, i: int, reason: str) -> Refused:
    return Refused(f'column "{name}" row {i + 1}: {reason} {NOTE}')


def shown(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:40]}..."


def oracle_feature(name: str, cells: list[str | None]) -> tuple[list[float], str]:
    """A text feature column (None: an empty cell) as floats and its kind, or Refused."""
    trimmed = [None if c is None else c.strip() for c in cells]
    for kind, parse in PARSERS.items():
        values = [None if t is None else parse(t) for t in trimmed]
        if all(v is not None for v, t in zip(values, trimmed, strict=True) if t is not None):
            if None in values:
                raise cell_refusal(name, values.index(None), "value is missing")
            floats = [float(v) for v in values]
            for i, x in enumerate(floats):
                if not math.isfinite(x):
                    raise cell_refusal(name, i, f'value "{shown(cells[i])}" is not finite')
            return floats, kind
    blank = (
        next(i for i, t in enumerate(trimmed) if t is None or t == "")
        if (None in trimmed or "" in trimmed)
        else None
    )
    first = next(t for t in trimmed if t is not None)
    boolean = as_number(first) is None and as_boolean(first) is not None
    parse, expected = (as_boolean, "a boolean") if boolean else (as_number, "a number")
    bad = next(i for i, t in enumerate(trimmed) if t is not None and parse(t) is None)
    if blank is not None and blank <= bad:
        raise cell_refusal(name, blank, "value is missing")
    raise cell_refusal(name, bad, f'"{shown(cells[bad])}" is not {expected}')


def oracle_labels(name: str, cells: list[str | None]) -> tuple[list[Any], str]:
    """A text label column as values and its type, or Refused."""
    # An empty cell is said first, then one of spaces alone (also missing).
    for i in [cells.index(None)] if None in cells else []:
        raise cell_refusal(name, i, "label is missing")
    for i, c in enumerate(cells):
        if c.strip() == "":
            raise cell_refusal(name, i, "label is missing")
    trimmed = [c.strip() for c in cells]
    for kind in ("integer", "number"):
        values = [PARSERS[kind](t) for t in trimmed]
        if None not in values:
            if kind == "number":
                for i, x in enumerate(values):
                    if not math.isfinite(x):
                        raise cell_refusal(name, i, f"label {x} is not finite")
                values = [x + 0.0 for x in values]
            return values, kind
    if all(t.lower() in ("true", "false") for t in trimmed):
        return [t.lower() == "true" for t in trimmed], "boolean"
    return trimmed, "string"


def oracle_classes(name: str, labels: list[Any]) -> tuple[list[Any], list[int]]:
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise Refused(
            f'label column "{name}" has a single value ({classes[0]!r}); '
            "training needs at least 2 classes"
        )
    index = {c: k for k, c in enumerate(classes)}
    y = [index[v] for v in labels]
    if all(isinstance(c, float) and c.is_integer() and abs(c) <= 2**53 for c in classes):
        classes = [int(c) for c in classes]
    return classes, y


def oracle_table(names: list[str], label: str | None, columns: dict[str, list]) -> dict:
    """What the rules make of the columns of a file that reads (Refused otherwise)."""
    m = len(columns[names[0]][0])  # (values, kind) per column
    if m < 2:
        raise Refused("the file has 1 data row; training needs at least 2")
    label = names[-1] if label is None else label
    features = [n for n in names if n != label]
    X = np.empty((m, len(features)))
    kinds = {}
    for j, name in enumerate(features):
        X[:, j], kinds[name] = columns[name]
    labels, kinds[label] = columns[label]
    classes, y = oracle_classes(label, labels)
    schema = [
        {"name": n, "type": kinds[n], "role": "label" if n == label else "feature"} for n in names
    ]
    return {
        "features": features,
        "X": X,
        "label": label,
        "classes": classes,
        "y": y,
        "schema": schema,
    }


def oracle_csv(data: bytes, label: str | None) -> dict:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    names = [n.strip() for n in rows[0]]
    body = [[c if c != "" else None for c in row] for row in rows[1:] if row]
    columns = {n: [row[j] for row in body] for j, n in enumerate(names)}
    label = names[-1] if label is None else label
    typed = {n: oracle_feature(n, c) for n, c in columns.items() if n != label}
    return oracle_table(names, label, {**typed, label: oracle_labels(label, columns[label])})


def assert_as_oracle(data: bytes, *, label: str | None = None, format: str = "csv") -> Any:
    """The reader's answer, checked against the oracle's."""
    got = read(data, format=format, label=label)
    refused: Refused | None = None
    try:
        expected = oracle_csv(data, label) if format == "csv" else oracle_parquet(data)
    except Refused as error:
        refused = error
    if refused is not None:
        assert isinstance(got, ServiceError), f"the reader took a file refused: {refused.detail}"
        assert got.detail == refused.detail
        return got
    assert isinstance(got, ParsedDataset), got.detail
    assert got.features == expected["features"]
    assert got.label == expected["label"]
    assert got.schema == expected["schema"]
    assert got.label_type == next(c["type"] for c in expected["schema"] if c["role"] == "label")
    assert got.classes == expected["classes"]
    assert [type(c) for c in got.classes] == [type(c) for c in expected["classes"]]
    assert got.y_index.dtype == np.int32
    assert got.y_index.tolist() == expected["y"]
    assert got.class_counts == {
        str(c): expected["y"].count(k) for k, c in enumerate(expected["classes"])
    }
    assert got.X.dtype == np.float64
    assert got.X.flags.c_contiguous
    assert got.X.shape == expected["X"].shape
    assert got.X.tobytes() == expected["X"].tobytes()  # bit for bit: -0.0 is not 0.0
    return got


# CSV --------------------------------------------------------------------------------------------

PLAIN_INTEGERS = st.integers(-(2**63), 2**63 - 1).map(str) | st.integers(-1000, 1000).map(str)
ODD_INTEGERS = st.sampled_from(
    ["007", "-0", "+1", "0x1F", " 7", "8 ", "\t9", "\u00a05", "9223372036854775808"]
)
PLAIN_FLOATS = st.floats(allow_nan=False, allow_infinity=False).map(repr) | st.floats(
    allow_nan=False, allow_infinity=False, width=32
).map(lambda x: f"{x:.6g}")
ODD_FLOATS = st.sampled_from(
    [".5", "5.", "+.5", "1e5", "1E+05", "-0.0", "4.9e-324", "1e-999", "00.5", " 2.5 ", "2,5"]
)
ODD_CELLS = st.sampled_from(
    ["", " ", "nan", "inf", "-inf", "1e999", "NA", "true", "False", "abc", "2024-01-02", "1_000"]
)
WORDS = st.text(alphabet="abcxyz", min_size=1, max_size=4) | st.sampled_from(["a b", "x,y", " cat"])


@st.composite
def cells_of(draw: st.DrawFn, plain: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> str:
    """A plain cell, or one time in 30 an odd one (a sign, spaces, hex, an exponent...)."""
    return draw(odd) if draw(st.integers(0, 29)) == 0 else draw(plain)


INTEGERS = cells_of(PLAIN_INTEGERS, ODD_INTEGERS)
FLOATS = cells_of(PLAIN_FLOATS, ODD_FLOATS)


@st.composite
def feature_column(draw: st.DrawFn, m: int) -> list[str]:
    """m cells: integers, floats, integers then floats (a retype mid-file), or a mix."""
    kind = draw(st.sampled_from(["integers", "floats", "integers then floats", "mixed"]))
    if kind == "integers":
        return draw(st.lists(INTEGERS, min_size=m, max_size=m))
    if kind == "floats":
        return draw(st.lists(FLOATS, min_size=m, max_size=m))
    if kind == "integers then floats":
        switch = draw(st.integers(0, m))
        cells = draw(st.lists(INTEGERS, min_size=switch, max_size=switch))
        return cells + draw(st.lists(FLOATS, min_size=m - switch, max_size=m - switch))
    return draw(st.lists(INTEGERS | FLOATS, min_size=m, max_size=m))


LABEL_KINDS = {
    "integers": st.integers(-3, 3).map(str) | st.sampled_from(["007", " 1", "-0"]),
    "floats": st.sampled_from(["0.0", "1.0", "-0.0", "0.5", "1e0", "2", " 1.0 "]),
    "words": WORDS | st.sampled_from(["cat", "dog", " cat", "Cat"]),
    "booleans": st.sampled_from(["true", "false", "TRUE", "False", " true"]),
    "anything": st.sampled_from(["1", "a", "", " ", "nan", "inf", "true", "1.5"]),
}
LABEL_KIND_NAMES = ["integers", "floats", "words", "booleans"] * 3 + ["anything"]


@st.composite
def typed_csv_documents(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """(CSV bytes, the label parameter): numeric feature columns, a label column of one kind,
    quoted cells now and then, CRLF or LF, a BOM, names with spaces, the label anywhere."""
    n_x = draw(st.integers(1, 4))
    m = draw(st.integers(2, 60))
    columns = [draw(feature_column(m)) for _ in range(n_x)]
    if draw(st.integers(0, 3)) == 0:  # a missing, non-finite, boolean, date or word cell
        columns[draw(st.integers(0, n_x - 1))][draw(st.integers(0, m - 1))] = draw(ODD_CELLS)
    kind = LABEL_KINDS[draw(st.sampled_from(LABEL_KIND_NAMES))]
    labels = draw(st.lists(kind, min_size=m, max_size=m))
    at = draw(st.integers(0, n_x))
    columns.insert(at, labels)
    names = [f"{' ' if draw(st.booleans()) else ''}c{j}" for j in range(n_x + 1)]
    rows = [[column[i] for column in columns] for i in range(m)]
    quote = draw(st.booleans())

    def line(cells: list[str]) -> str:
        if quote:
            return ",".join('"' + cell.replace('"', '""') + '"' for cell in cells)
        return csv_line(cells)

    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(line(row) for row in [names, *rows]) + newline
    data = (UTF8_BOM if draw(st.booleans()) else b"") + text.encode()
    label = None if at == n_x and draw(st.booleans()) else names[at].strip()
    return data, label


@fast
@given(typed_csv_documents(), block_sizes)
def test_typed_csv_reads_as_the_oracle_reads_it(document, sizes):
    data, label = document
    with blocks(*sizes):
        assert_as_oracle(data, label=label)


@fast
@given(numeric_tables(max_rows=60, max_features=5), block_sizes, st.sampled_from(["\n", "\r\n"]))
def test_valid_numeric_csv_reads_as_the_oracle_reads_it(table, sizes, newline):
    features, X, labels = table
    data = numeric_csv(features, X, labels).replace(b"\n", newline.encode())
    with blocks(*sizes):
        assert isinstance(assert_as_oracle(data), ParsedDataset)


def test_a_column_of_integers_that_turns_to_floats_is_retyped():
    rows = "".join(f"{i},{i % 2}\n" for i in range(200)) + "2.5,1\n"
    with blocks(256, 64):
        got = assert_as_oracle(f"x,y\n{rows}".encode())
    assert got.schema[0] == {"name": "x", "type": "number", "role": "feature"}


def test_integers_then_a_minus_zero_float_keep_the_sign_of_zero():
    """-0 read as an integer is 0.0; once the column is numbers it is -0.0: the rows read
    before the retyping are read again, not kept."""
    rows = "-0,0\n" + "".join(f"{i},{i % 2}\n" for i in range(200)) + "2.5,1\n"
    with blocks(256, 64):
        got = assert_as_oracle(f"x,y\n{rows}".encode())
    assert str(got.X[0, 0]) == "-0.0"


def test_a_bad_cell_in_a_later_column_does_not_hide_an_earlier_columns_later_one():
    rows = [f"{i},{i},{i % 2}" for i in range(300)]
    rows[3] = "3,abc,1"
    rows[250] = "xyz,250,0"
    with blocks(256, 64):
        got = assert_as_oracle(("a,b,y\n" + "\n".join(rows) + "\n").encode())
    assert got.detail == f'column "a" row 251: "xyz" is not a number {NOTE}'


def test_a_file_with_quotes_in_its_body_is_read_in_the_large_blocks():
    """Whether a quoted line break ends a row depends on where Arrow's blocks end (in 32-byte
    blocks this file has 3 rows, in 24-byte ones 5): with a quote in the body the reader
    reads in BLOCK_BYTES blocks, whatever the quote-free block size."""
    data = b'x,y\n0,a\n1,a\n2,"a\n3,a\n4,b\n5,a\n6,b\n'
    with blocks(24, 32):
        got = read(data)
    assert got.rows == 5


def test_more_distinct_labels_than_max_classes_is_refused_after_reading():
    rows = "".join(f"{i},{i}\n" for i in range(50))
    limits = PARSER_SETTINGS.model_copy(update={"max_classes": 10})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(f"x,y\n{rows}".encode())
        with pytest.raises(ServiceError) as caught:
            parse_dataset(path, format="csv", label=None, settings=limits)
    assert caught.value.detail.startswith('label column "y" has 50 distinct values; at most 10')


# Parquet ----------------------------------------------------------------------------------------

FEATURE_TYPES = [
    pa.int8(),
    pa.int32(),
    pa.int64(),
    pa.uint64(),
    pa.float32(),
    pa.float64(),
    pa.bool_(),
    pa.decimal128(12, 3),
]


@st.composite
def typed_parquet_documents(draw: st.DrawFn) -> bytes:
    """Numeric feature columns of Arrow's types (uint64 past 2**53 too), a label column of
    integers, floats, strings or categories (unused ones too), now and then a null or a
    NaN, in several row groups."""
    m = draw(st.integers(2, 40))
    n_x = draw(st.integers(1, 4))
    columns = {}
    for j in range(n_x):
        arrow_type = draw(st.sampled_from(FEATURE_TYPES))
        if pa.types.is_boolean(arrow_type):
            values = draw(st.lists(st.booleans(), min_size=m, max_size=m))
        elif pa.types.is_floating(arrow_type):
            width = 32 if arrow_type == pa.float32() else 64
            values = draw(st.lists(st.floats(width=width), min_size=m, max_size=m))
        elif pa.types.is_decimal(arrow_type):
            values = draw(st.lists(st.decimals(-(10**8), 10**8, places=3), min_size=m, max_size=m))
        else:
            bits = arrow_type.bit_width
            low, high = (
                (0, 2**bits - 1)
                if pa.types.is_unsigned_integer(arrow_type)
                else (
                    -(2 ** (bits - 1)),
                    2 ** (bits - 1) - 1,
                )
            )
            values = draw(st.lists(st.integers(low, high), min_size=m, max_size=m))
        if draw(st.integers(0, 5)) == 0:
            values[draw(st.integers(0, m - 1))] = None
        columns[f"x{j}"] = pa.array(values, arrow_type)
    kind = draw(st.sampled_from(["integers", "floats", "strings", "categories", "any"]))
    if kind == "integers":
        label = pa.array(draw(st.lists(st.integers(-2, 2), min_size=m, max_size=m)))
    elif kind == "floats":
        label = pa.array(
            draw(st.lists(st.sampled_from([0.0, -0.0, 1.0, 0.5]), min_size=m, max_size=m))
        )
    elif kind == "strings":
        label = pa.array(draw(st.lists(WORDS, min_size=m, max_size=m)), pa.large_string())
    elif kind == "categories":
        words = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=m, max_size=m))
        label = pa.DictionaryArray.from_arrays(
            pa.array([ord(w) - ord("a") for w in words], pa.int8()), pa.array(["a", "b", "c", "d"])
        )
    else:
        label = draw(arrow_columns(m))
    columns["y"] = label
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink, row_group_size=draw(st.integers(1, 64)))
    return sink.getvalue()


def parquet_kind(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    return None


def oracle_parquet(data: bytes) -> dict:
    """Parquet read whole by pyarrow, each value converted in Python."""
    table = pq.read_table(io.BytesIO(data))
    names = table.column_names
    label = names[-1]
    columns = {}
    for name in names:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        values = column.to_pylist()
        if None in values:
            reason = "label is missing" if name == label else "value is missing"
            raise cell_refusal(name, values.index(None), reason)
        kind = parquet_kind(column.type)
        if name == label:
            columns[name] = oracle_parquet_labels(name, column.type, values, kind)
            continue
        if pa.types.is_decimal(column.type):
            # Arrow's decimal to float64 is not Python's correctly rounded float(Decimal)
            # (57 of 420 three-place decimals differ in the last bit): the service has
            # always stored Arrow's, so the oracle takes that one conversion from Arrow.
            values = column.cast(pa.float64()).to_pylist()
        floats = [float(v) for v in values]
        for i, x in enumerate(floats):
            if not math.isfinite(x):
                raise cell_refusal(name, i, f"value {x} is not finite")
        columns[name] = (floats, kind)
    return oracle_table(names, label, columns)


def oracle_parquet_labels(name: str, arrow_type: pa.DataType, values: list, kind: str | None):
    text = pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if kind is None and not text:
        raise Refused(
            f'label column "{name}" has the type {arrow_type}; '
            "labels must be numbers, strings or booleans"
        )
    if kind is None:
        return values, "string"
    if kind == "integer" and max(values) > INT64[1]:
        raise Refused(
            f'label column "{name}" has integers past 2**63 - 1; use smaller codes or text'
        )
    if kind == "number":
        values = [float(v) for v in values]
        for i, x in enumerate(values):
            if not math.isfinite(x):
                raise cell_refusal(name, i, f"label {x} is not finite")
        values = [x + 0.0 for x in values]
    return values, kind


@fast
@given(typed_parquet_documents(), st.sampled_from([64, 2**20]))
def test_typed_parquet_reads_as_the_oracle_reads_it(data, batch_bytes):
    with blocks(reader.BLOCK_BYTES, 2**20, parquet_batch=batch_bytes):
        assert_as_oracle(data, format="parquet")


@fast
@given(numeric_tables(max_rows=60, max_features=5))
def test_valid_numeric_parquet_reads_as_the_oracle_reads_it(table):
    features, X, labels = table
    sink = io.BytesIO()
    pq.write_table(pa.table({**{n: X[:, j] for j, n in enumerate(features)}, "y": labels}), sink)
    with blocks(reader.BLOCK_BYTES, 2**20, parquet_batch=64):
        assert isinstance(assert_as_oracle(sink.getvalue(), format="parquet"), ParsedDataset)
