"""Hypothesis strategies for uploads: CSV text and Parquet files, well formed or not.

Shared by the property tests of the parser (tests/property) and by the
schemathesis run (tests/schemathesis/hooks.py), which sends the same kinds of
files to the live API.
"""

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import settings
from hypothesis import strategies as st

# Every run draws the same examples (CI never meets a new one by chance: a failure found by
# exploring is turned into a test of its own), and no example database is written.
DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_LE_BOM = b"\xff\xfe"
# Byte sequences that are never UTF-8: a lone continuation byte, a truncated
# two-byte character, an encoded surrogate, an overlong slash, bytes past U+10FFFF.
INVALID_UTF8 = (b"\xff", b"\x80", b"\xc3(", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf5\x80\x80\x80")
# Cells that are not plain numbers but look close to one, or are nothing at all.
ODD_TOKENS = (
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "+inf",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1e-999",
    "",
    " ",
    "true",
    "false",
    "TRUE",
    "0x1F",
    "1_000",
    "1,5",
    "١٢",  # Arabic-Indic digits
    "abc",
    "\x00",
    '"',
    "9223372036854775808",  # 2**63
    "-9223372036854775809",
    "1" * 400,
)

# Header names: printable text without the characters CSV quoting is about.
names = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters=',"\r\n'
    ),
    min_size=1,
    max_size=8,
)

finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
numbers = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    finite_floats,
)


def number_text(value: int | float) -> str:
    """A number as a CSV cell: repr round-trips float64 exactly."""
    return repr(float(value)) if isinstance(value, float) else str(value)


# Mostly numbers, so that whole columns often are numeric and the odd cell is the one to find.
cells = st.one_of(
    numbers.map(number_text),
    numbers.map(number_text),
    numbers.map(number_text),
    st.floats(width=64).map(repr),  # nan, inf and -inf included
    st.sampled_from(ODD_TOKENS),
    st.text(max_size=12),
)


def csv_cell(text: str) -> str:
    """``text`` quoted when CSV needs it (commas, quotes, line breaks, outer spaces)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(row: list[str]) -> str:
    return ",".join(csv_cell(cell) for cell in row)


@st.composite
def csv_documents(draw: st.DrawFn) -> bytes:
    """Arbitrary CSV-shaped bytes: any names (duplicates too), ragged rows, odd tokens,
    and now and then a BOM, invalid UTF-8, CRLF line ends or no final newline.
    """
    width = draw(st.integers(min_value=1, max_value=5))
    header = draw(st.lists(names, min_size=width, max_size=width))
    ragged = draw(st.integers(0, 3)) == 0
    row_width = st.integers(min_value=0, max_value=width + 2) if ragged else st.just(width)
    row = row_width.flatmap(lambda n: st.lists(cells, min_size=n, max_size=n))
    rows = draw(st.lists(row, min_size=draw(st.sampled_from([0, 2, 2, 2])), max_size=12))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(csv_line(row) for row in [header, *rows])
    if draw(st.booleans()):
        text += newline
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 5)) == 0:
        data = draw(st.sampled_from([UTF8_BOM, UTF16_LE_BOM])) + data
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + draw(st.sampled_from(INVALID_UTF8)) + data[at:]
    return data


@st.composite
def numeric_tables(
    draw: st.DrawFn, *, min_rows: int = 2, max_rows: int = 20, max_features: int = 4
) -> tuple[list[str], np.ndarray, list[int]]:
    """(feature names, (m, n_x) finite float64 features, m integer labels with both classes)."""
    n_x = draw(st.integers(min_value=1, max_value=max_features))
    m = draw(st.integers(min_value=min_rows, max_value=max_rows))
    X = np.array(
        draw(st.lists(st.lists(numbers, min_size=n_x, max_size=n_x), min_size=m, max_size=m)),
        dtype=np.float64,
    ).reshape(m, n_x)
    labels = draw(st.lists(st.integers(0, 1), min_size=m, max_size=m))
    labels[0], labels[1] = 0, 1  # two classes: a dataset needs them
    return [f"x{j}" for j in range(n_x)], X, labels


def numeric_csv(features: list[str], X: np.ndarray, labels: list[Any], label: str = "y") -> bytes:
    """A table as CSV text whose numbers read back exactly (repr of each float64)."""
    lines = [csv_line([*features, label])]
    for row, y in zip(X.tolist(), labels, strict=True):
        lines.append(csv_line([number_text(v) for v in row] + [str(y)]))
    return ("\n".join(lines) + "\n").encode()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# Nested Arrow types: a Parquet column of any of these cannot be a feature or a label.
nested_columns = st.sampled_from(
    [
        ("list", pa.array([[1.0, 2.0], [3.0]], pa.list_(pa.float64()))),
        ("large_list", pa.array([[1], [2, 3]], pa.large_list(pa.int64()))),
        ("struct", pa.array([{"a": 1, "b": 2.0}, {"a": 3, "b": 4.0}])),
        ("map", pa.array([[("k", 1)], [("j", 2)]], pa.map_(pa.string(), pa.int64()))),
        ("list_of_lists", pa.array([[[1]], [[2], [3]]], pa.list_(pa.list_(pa.int64())))),
    ]
)


@st.composite
def arrow_columns(draw: st.DrawFn, m: int) -> pa.Array:
    """A column of m values of one of Parquet's flat types, nulls and NaN included."""
    floats = st.floats(width=64) | st.none()
    kind = draw(st.sampled_from(["float", "int", "bool", "string", "dict", "date", "binary"]))
    if kind == "float":
        return pa.array(draw(st.lists(floats, min_size=m, max_size=m)), pa.float64())
    if kind == "int":
        ints = st.integers(-(2**63), 2**63 - 1) | st.none()
        return pa.array(draw(st.lists(ints, min_size=m, max_size=m)), pa.int64())
    if kind == "bool":
        return pa.array(draw(st.lists(st.booleans() | st.none(), min_size=m, max_size=m)))
    if kind == "date":
        days = st.integers(0, 30_000) | st.none()
        return pa.array(draw(st.lists(days, min_size=m, max_size=m)), pa.date32())
    if kind == "binary":
        return pa.array(draw(st.lists(st.binary(max_size=4), min_size=m, max_size=m)))
    text = st.text(max_size=6) | st.none()
    values = pa.array(draw(st.lists(text, min_size=m, max_size=m)), pa.string())
    return values.dictionary_encode() if kind == "dict" else values


@st.composite
def parquet_documents(draw: st.DrawFn) -> bytes:
    """Parquet files: numeric tables, columns of any flat type, nested columns, truncated files."""
    kind = draw(st.sampled_from(["numeric", "typed", "nested", "truncated"]))
    features, X, labels = draw(numeric_tables(max_rows=5))
    table = pa.table({**{n: X[:, j] for j, n in enumerate(features)}, "y": labels})
    if kind == "typed":
        m = draw(st.integers(min_value=0, max_value=6))
        width = draw(st.integers(min_value=1, max_value=4))
        table = pa.table({f"c{j}": draw(arrow_columns(m)) for j in range(width)})
    if kind == "nested":
        _, column = draw(nested_columns)
        table = pa.table({"nested": column, "y": [0, 1]})
    data = parquet_bytes(table)
    if kind == "truncated":
        data = data[: draw(st.integers(min_value=0, max_value=len(data) - 1))]
    return data
