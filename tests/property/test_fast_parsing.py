"""The fast path (fast_parsing) against the referee (parsing.parse_dataset).

For generated CSV and Parquet files the fast path either gives exactly what the
referee gives (the same matrix bit for bit, schema, classes, counts and rows) or
gives up; it never accepts a file the referee refuses. Block sizes are made
small, so that files span many blocks: types inferred from the first block meet
other cells later, labels arrive in many batches, and columns are retyped
mid-file. Valid numeric files, the common case, must take the fast path.
"""

import contextlib
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.errors import ServiceError
from service.core.settings import Settings
from service.datasets import fast_parsing, parsing
from service.datasets.fast_parsing import parse_fast
from service.datasets.parsing import ParsedDataset, parse_dataset
from tests.property.strategies import (
    DETERMINISTIC,
    UTF8_BOM,
    arrow_columns,
    csv_documents,
    csv_line,
    numeric_csv,
    numeric_tables,
    parquet_documents,
)

PARSER_SETTINGS = Settings(database_url="sqlite://")

fast = settings(DETERMINISTIC, max_examples=150)


@contextlib.contextmanager
def blocks(referee: int, quote_free: int, parquet_batch: int = 8 * 2**20) -> Iterator[None]:
    """Both paths read CSV in blocks of these sizes (and Parquet in batches of about this)."""
    saved = parsing.BLOCK_BYTES, fast_parsing.QUOTE_FREE_BLOCK_BYTES
    saved_batch = fast_parsing.PARQUET_BATCH_BYTES
    parsing.BLOCK_BYTES, fast_parsing.QUOTE_FREE_BLOCK_BYTES = referee, quote_free
    fast_parsing.PARQUET_BATCH_BYTES = parquet_batch
    try:
        yield
    finally:
        parsing.BLOCK_BYTES, fast_parsing.QUOTE_FREE_BLOCK_BYTES = saved
        fast_parsing.PARQUET_BATCH_BYTES = saved_batch


# (the referee's block, the fast path's block for files without quotes), in bytes. Rows
# longer than a block are refused by Arrow (the fast path then gives up).
block_sizes = st.tuples(st.sampled_from([256, 1024, 8 * 2**20]), st.sampled_from([64, 512, 2**20]))
roomy_blocks = st.sampled_from([(1024, 512), (8 * 2**20, 2**20)])  # every generated row fits


def both_paths(
    data: bytes, *, format: str = "csv", label: str | None = None, limits: dict | None = None
) -> tuple[ParsedDataset | None, ParsedDataset | ServiceError]:
    """(the fast path's dataset or None, the referee's dataset or refusal); fails the test if
    the fast path accepts a file the referee refuses, or reads it differently."""
    options = PARSER_SETTINGS.model_copy(update=limits or {})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            referee = parse_dataset(path, format=format, label=label, settings=options)
        except ServiceError as error:
            referee = error
        streamed = parse_fast(path, format=format, label=label, settings=options)
    if streamed is not None:
        assert not isinstance(referee, ServiceError), (
            f"the fast path took a file the referee refuses: {referee.detail}"
        )
        assert_same(streamed, referee)
    return streamed, referee


def assert_same(streamed: ParsedDataset, referee: ParsedDataset) -> None:
    assert streamed.features == referee.features
    assert (streamed.label, streamed.label_type) == (referee.label, referee.label_type)
    assert streamed.schema == referee.schema
    assert streamed.classes == referee.classes
    assert [type(c) for c in streamed.classes] == [type(c) for c in referee.classes]
    assert streamed.class_counts == referee.class_counts
    assert streamed.y_index.dtype == referee.y_index.dtype == np.int32
    np.testing.assert_array_equal(streamed.y_index, referee.y_index)
    assert streamed.X.dtype == np.float64
    assert streamed.X.flags.c_contiguous
    assert streamed.X.shape == referee.X.shape
    assert streamed.X.tobytes() == referee.X.tobytes()  # bit for bit: -0.0 is not 0.0


# CSV cells the fast path meets -----------------------------------------------------------------

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
def test_typed_csv_reads_as_the_referee_reads_it_or_not_at_all(document, sizes):
    data, label = document
    with blocks(*sizes):
        both_paths(data, label=label)


@settings(DETERMINISTIC, max_examples=200)
@given(csv_documents(), block_sizes)
def test_any_csv_reads_as_the_referee_reads_it_or_not_at_all(data, sizes):
    with blocks(*sizes):
        both_paths(data)


@fast
@given(numeric_tables(max_rows=60, max_features=5), roomy_blocks, st.sampled_from(["\n", "\r\n"]))
def test_valid_numeric_csv_takes_the_fast_path(table, sizes, newline):
    features, X, labels = table
    data = numeric_csv(features, X, labels).replace(b"\n", newline.encode())
    with blocks(*sizes):
        streamed, _ = both_paths(data)
    assert streamed is not None


def test_a_column_of_integers_that_turns_to_floats_is_retyped_not_given_up():
    rows = "".join(f"{i},{i % 2}\n" for i in range(200)) + "2.5,1\n"
    with blocks(referee=256, quote_free=64):
        streamed, _ = both_paths(f"x,y\n{rows}".encode())
    assert streamed is not None
    assert streamed.schema[0] == {"name": "x", "type": "number", "role": "feature"}


def test_a_file_with_quotes_in_its_body_is_read_in_the_referees_blocks():
    """Whether a quoted line break ends a row depends on where Arrow's blocks end (in 32-byte
    blocks this file has 3 rows, in 24-byte ones 5): with a quote in the body the fast path
    reads in the referee's blocks, and sees its rows."""
    data = b'x,y\n0,a\n1,a\n2,"a\n3,a\n4,b\n5,a\n6,b\n'
    with blocks(referee=24, quote_free=32):
        streamed, _ = both_paths(data)
    assert streamed is not None
    assert streamed.rows == 5


def test_more_distinct_labels_than_max_classes_is_for_the_referee():
    rows = "".join(f"{i},{i}\n" for i in range(50))
    streamed, referee = both_paths(f"x,y\n{rows}".encode(), limits={"max_classes": 10})
    assert streamed is None
    assert isinstance(referee, ServiceError)


def test_more_rows_than_max_rows_is_for_the_referee():
    streamed, referee = both_paths(b"x,y\n1,0\n2,1\n3,0\n", limits={"max_rows": 2})
    assert streamed is None
    assert isinstance(referee, ServiceError)


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


@fast
@given(typed_parquet_documents(), st.sampled_from([64, 2**20]))
def test_typed_parquet_reads_as_the_referee_reads_it_or_not_at_all(data, batch_bytes):
    with blocks(referee=parsing.BLOCK_BYTES, quote_free=2**20, parquet_batch=batch_bytes):
        both_paths(data, format="parquet")


@settings(DETERMINISTIC, max_examples=100)
@given(parquet_documents())
def test_any_parquet_reads_as_the_referee_reads_it_or_not_at_all(data):
    both_paths(data, format="parquet")


@fast
@given(numeric_tables(max_rows=60, max_features=5))
def test_valid_numeric_parquet_takes_the_fast_path(table):
    features, X, labels = table
    sink = io.BytesIO()
    pq.write_table(pa.table({**{n: X[:, j] for j, n in enumerate(features)}, "y": labels}), sink)
    with blocks(referee=parsing.BLOCK_BYTES, quote_free=2**20, parquet_batch=64):
        streamed, _ = both_paths(sink.getvalue(), format="parquet")
    assert streamed is not None
