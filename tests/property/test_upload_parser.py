"""Properties of the upload parser: any file reads exactly, or is a 4xx that says where.

parse_dataset runs on files written to temporary paths; a subset goes through
POST /v1/datasets on the in-process app. Whatever the bytes, the answer is a
ParsedDataset or a ServiceError with a 4xx status, never another exception;
a refusal about one cell names its column and row, and a valid numeric table
reads back to exactly the numbers written. Words make a column categorical and empty
cells are missing (issue 12): neither is refused.
"""

import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from service.core.errors import PayloadTooLarge, ServiceError, Unprocessable
from service.core.settings import Settings
from service.datasets.reader import ParsedDataset, parse_dataset
from tests.property.strategies import (
    DETERMINISTIC,
    INVALID_UTF8,
    UTF8_BOM,
    UTF16_LE_BOM,
    csv_documents,
    csv_line,
    nested_columns,
    numeric_csv,
    numeric_tables,
    parquet_bytes,
    parquet_documents,
)

PARSER_SETTINGS = Settings(database_url="sqlite://")
NOTE = "(row 1 is the first data row)"
# Cells that are one cell's problem (not finite), missing, or not a number.
NON_FINITE = ("inf", "-inf", "+inf", "Infinity", "-Infinity", "1e999")
MISSING = ("", "  ", "nan", "NaN", "-nan", "NA", " null ")
NOT_NUMBERS = ("abc", "1,5", "0x1F", "1_000", "١٢", "12abc", "--1", "1e", ".")
# Words that no reader takes for a number or a boolean (no "nan", "inf", "true", "e5"...).
words = st.text(alphabet="bcdghjkmopqwxyz", min_size=1, max_size=6)

fast = settings(DETERMINISTIC, max_examples=60)


def parse_bytes(data: bytes, *, format: str = "csv", label: str | None = None) -> ParsedDataset:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        return parse_dataset(path, format=format, label=label, settings=PARSER_SETTINGS)


def outcome(data: bytes, *, format: str = "csv") -> ParsedDataset | ServiceError:
    """The parsed dataset, or the ServiceError; any other exception fails the test."""
    try:
        return parse_bytes(data, format=format)
    except ServiceError as error:
        return error


def assert_specific_refusal(error: ServiceError) -> None:
    """A 4xx whose detail is specific: it names the row and the column it carries."""
    assert isinstance(error, Unprocessable | PayloadTooLarge), repr(error)
    assert 400 <= error.status < 500
    assert error.detail
    assert "Traceback" not in error.detail
    # Arrow's own message is the last resort; every case generated here has a better one.
    assert not error.detail.startswith("the CSV file could not be read"), error.detail
    if "row" in error.extra:
        assert f"row {error.extra['row']}" in error.detail, error.detail
    if "column" in error.extra:
        assert f'"{error.extra["column"]}"' in error.detail, error.detail
    if isinstance(error, Unprocessable):
        assert error.extra["errors"][0]["field"] in ("file", "label")


def assert_cell_refusal(error: ServiceError, column: str, row: int, reason: str = "") -> None:
    assert isinstance(error, Unprocessable), repr(error)
    assert (error.extra.get("column"), error.extra.get("row")) == (column, row), error.detail
    assert error.detail.startswith(f'column "{column}" row {row}: {reason}'), error.detail
    assert error.detail.endswith(NOTE)


def assert_valid(parsed: ParsedDataset) -> None:
    assert parsed.X.dtype == np.float64
    assert parsed.X.shape == (parsed.rows, len(parsed.features))
    assert not np.isinf(parsed.X).any()  # NaN: a missing cell
    assert parsed.rows >= 2
    assert len(parsed.classes) >= 2
    assert 0 <= parsed.y_index.min() <= parsed.y_index.max() < len(parsed.classes)
    assert sum(parsed.class_counts.values()) == parsed.rows


# Any bytes ------------------------------------------------------------------------------------


@settings(DETERMINISTIC, max_examples=300)
@given(csv_documents())
def test_any_csv_parses_or_is_a_4xx_naming_where(data):
    result = outcome(data)
    if isinstance(result, ServiceError):
        assert_specific_refusal(result)
    else:
        assert_valid(result)


@fast
@given(st.binary(max_size=300))
def test_random_bytes_as_csv_are_a_4xx(data):
    result = outcome(data)
    if isinstance(result, ServiceError):
        assert_specific_refusal(result)
    else:
        assert_valid(result)


@fast
@given(st.one_of(parquet_documents(), st.binary(max_size=300).map(lambda b: b"PAR1" + b)))
def test_any_parquet_parses_or_is_a_4xx(data):
    result = outcome(data, format="parquet")
    if isinstance(result, ServiceError):
        assert 400 <= result.status < 500
        assert result.detail
    else:
        assert_valid(result)


# Valid tables read back exactly ---------------------------------------------------------------


@fast
@given(numeric_tables(max_rows=30, max_features=5))
def test_valid_numeric_csv_round_trips_exactly(table):
    features, X, labels = table
    parsed = parse_bytes(numeric_csv(features, X, labels))
    assert parsed.features == features
    assert parsed.label == "y"
    np.testing.assert_array_equal(parsed.X, X)
    assert parsed.labels.tolist() == labels
    assert parsed.classes == [0, 1]


@fast
@given(numeric_tables(max_rows=30, max_features=5), st.sampled_from(["\n", "\r\n"]))
def test_a_utf8_bom_and_crlf_line_ends_read_the_same(table, newline):
    features, X, labels = table
    data = UTF8_BOM + numeric_csv(features, X, labels).replace(b"\n", newline.encode())
    parsed = parse_bytes(data)
    assert parsed.features == features  # the BOM is not part of the first name
    np.testing.assert_array_equal(parsed.X, X)


@fast
@given(numeric_tables(max_rows=30, max_features=5))
def test_valid_numeric_parquet_round_trips_exactly(table):
    features, X, labels = table
    columns = {name: X[:, j] for j, name in enumerate(features)}
    parsed = parse_bytes(parquet_bytes(pa.table({**columns, "y": labels})), format="parquet")
    assert parsed.features == features
    np.testing.assert_array_equal(parsed.X, X)
    assert parsed.labels.tolist() == labels


# One bad cell ---------------------------------------------------------------------------------


@st.composite
def table_with_a_bad_cell(draw, tokens):
    """(CSV bytes, column name, 1-based row, token) with one feature cell replaced."""
    features, X, labels = draw(numeric_tables(max_rows=30, max_features=4))
    rows = [[repr(v) for v in row] + [str(y)] for row, y in zip(X.tolist(), labels, strict=True)]
    i = draw(st.integers(0, len(rows) - 1))
    j = draw(st.integers(0, len(features) - 1))
    token = draw(tokens)
    rows[i][j] = token
    data = "\n".join(csv_line(row) for row in [[*features, "y"], *rows]) + "\n"
    return data.encode(), features[j], i + 1, token


@fast
@given(table_with_a_bad_cell(st.sampled_from(NON_FINITE)))
def test_nan_inf_and_1e999_are_refused_naming_column_and_row(case):
    data, column, row, token = case
    error = outcome(data)
    assert_cell_refusal(error, column, row, f'value "{token}" is not finite')


def column_of(parsed: ParsedDataset, name: str) -> dict:
    return next(c for c in parsed.schema if c["name"] == name)


@fast
@given(table_with_a_bad_cell(st.sampled_from(NOT_NUMBERS) | words))
def test_text_in_a_numeric_column_makes_it_a_column_of_words(case):
    data, column, row, token = case
    parsed = outcome(data)
    assert isinstance(parsed, ParsedDataset), parsed.detail
    described = column_of(parsed, column)
    assert (described["type"], described["kind"]) == ("string", "categorical")
    code = parsed.X[row - 1, parsed.features.index(column)]
    assert described["levels"][int(code)] == token.strip()


@fast
@given(table_with_a_bad_cell(st.sampled_from(MISSING)))
def test_an_empty_blank_or_null_token_cell_is_missing_and_counted(case):
    data, column, row, _ = case
    parsed = outcome(data)
    assert isinstance(parsed, ParsedDataset), parsed.detail
    assert np.isnan(parsed.X[row - 1, parsed.features.index(column)])
    assert column_of(parsed, column)["missing"] == 1


@fast
@given(numeric_tables(max_rows=20, max_features=3), st.data())
def test_an_empty_or_blank_label_is_missing_naming_its_row(table, data):
    features, X, labels = table
    labels = [str(y) for y in labels]
    i = data.draw(st.integers(0, len(labels) - 1))
    labels[i] = data.draw(st.sampled_from(["", " ", "   ", "NA"]))
    error = outcome(numeric_csv(features, X, labels))
    assert isinstance(error, Unprocessable), repr(error)
    assert error.detail.startswith(f'label column "y" is missing in 1 row: row {i + 1} {NOTE}')
    assert (error.extra["column"], error.extra["rows"], error.extra["missing"]) == ("y", [i + 1], 1)


@fast
@given(numeric_tables(max_rows=20, max_features=4), st.data())
def test_random_mixes_of_numbers_and_words_make_columns_of_words(table, data):
    """Cells of several columns become words: each column holding one is categorical, its
    levels the cells as written (or, all its cells one word, it is refused as one level)."""
    features, X, labels = table
    rows = [[repr(v) for v in row] + [str(y)] for row, y in zip(X.tolist(), labels, strict=True)]
    spots = data.draw(
        st.sets(st.tuples(st.integers(0, len(rows) - 1), st.integers(0, len(features) - 1)))
    )
    assume(spots)
    for i, j in spots:
        rows[i][j] = data.draw(words)
    document = "\n".join(csv_line(row) for row in [[*features, "y"], *rows]) + "\n"
    parsed = outcome(document.encode())
    worded = sorted({j for _, j in spots})
    if isinstance(parsed, ServiceError):  # a column whose every cell is one word
        j = next(j for j in worded if len({row[j] for row in rows}) == 1)
        assert parsed.detail.startswith(f'column "{features[j]}" holds one level'), parsed.detail
        return
    for j, name in enumerate(features):
        described = column_of(parsed, name)
        assert described["kind"] == ("categorical" if j in worded else "numeric")
        if j in worded:
            codes = parsed.X[:, j].astype(int)
            assert [described["levels"][c] for c in codes] == [row[j] for row in rows]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_200_kb_field_in_a_feature_column_is_a_level_kept_whole(where):
    rows = [[str(i % 3), str(i % 2)] for i in range(10)]
    i = {"first": 0, "middle": 5, "last": 9}[where]
    rows[i][0] = "7" * 100_000 + "x" * 100_000  # 200 KB, not a number
    parsed = outcome("\n".join(csv_line(row) for row in [["big", "y"], *rows]).encode())
    assert parsed.schema[0]["levels"][int(parsed.X[i, 0])] == rows[i][0]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_an_infinite_200_kb_number_is_refused_quoting_its_start(where):
    rows = [[str(i), str(i % 2)] for i in range(10)]
    i = {"first": 0, "middle": 5, "last": 9}[where]
    rows[i][0] = "1" + "0" * 200_000  # 200 KB of digits: past float64's range
    error = outcome("\n".join(csv_line(row) for row in [["big", "y"], *rows]).encode())
    assert_cell_refusal(error, "big", i + 1, 'value "' + "1" + "0" * 39 + '..." is not finite')
    assert len(error.detail) < 200  # the cell is quoted, not copied


def test_200_kb_labels_are_classes_like_any_other_text():
    big = ["a" * 200_000, "b" * 200_000]
    rows = [[str(i), big[i % 2]] for i in range(6)]
    parsed = parse_bytes("\n".join(csv_line(r) for r in [["x", "y"], *rows]).encode())
    assert parsed.classes == big
    assert parsed.label_type == "string"


# Ragged rows, duplicate names, encodings, empty files ------------------------------------------


@fast
@given(numeric_tables(max_rows=30, max_features=4), st.data())
def test_a_ragged_row_is_refused_naming_the_row(table, data):
    features, X, labels = table
    rows = [[repr(v) for v in row] + [str(y)] for row, y in zip(X.tolist(), labels, strict=True)]
    i = data.draw(st.integers(0, len(rows) - 1))
    width = len(features) + 1
    cells = data.draw(st.integers(1, width + 3).filter(lambda n: n != width))
    rows[i] = (rows[i] * 2 + ["1"] * 3)[:cells]
    document = "\n".join(csv_line(row) for row in [[*features, "y"], *rows]) + "\n"
    error = outcome(document.encode())
    assert isinstance(error, Unprocessable)
    assert error.extra.get("row") == i + 1, error.detail
    assert error.detail == (
        f"CSV row {i + 1} has {cells} field{'s' if cells > 1 else ''} but the header has "
        f"{width} columns {NOTE}"
    )


@fast
@given(numeric_tables(max_rows=10, max_features=4), st.data())
def test_duplicate_column_names_are_refused_naming_them(table, data):
    features, X, labels = table
    assume(len(features) >= 2)
    j = data.draw(st.integers(1, len(features) - 1))
    twin = data.draw(st.sampled_from([features[0], f" {features[0]}", f"{features[0]} "]))
    features = [*features[:j], twin, *features[j + 1 :]]
    error = outcome(numeric_csv(features, X, labels))
    assert isinstance(error, Unprocessable)
    assert error.detail == f'column names must be unique; repeated: "{features[0]}"'


@fast
@given(
    numeric_tables(max_rows=20, max_features=3),
    st.sampled_from(INVALID_UTF8),
    st.data(),
)
def test_invalid_utf8_is_refused_naming_the_line(table, bad, data):
    document = numeric_csv(*table)
    lines = document.split(b"\n")[:-1]
    line = data.draw(st.integers(0, len(lines) - 1))
    at = data.draw(st.integers(0, len(lines[line])))
    lines[line] = lines[line][:at] + bad + lines[line][at:]
    error = outcome(b"\n".join(lines) + b"\n")
    assert isinstance(error, Unprocessable), error
    if line == 0:
        assert error.detail.startswith("the CSV header is not valid UTF-8"), error.detail
    else:
        assert error.detail.startswith(
            f"the CSV file is not valid UTF-8 text (line {line + 1} of the file"
        ), error.detail


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"\xef", 1),  # a UTF-8 BOM cut short: Arrow says "UTF8 string too short"
        (b"x,y\n1,0\n2,1\xc2", 3),  # the file ends inside a character
        (b"x,y\n1,0\n2,1\n3,\xe2\x82", 4),
    ],
)
def test_a_character_cut_off_by_the_end_of_the_file_is_refused_naming_its_line(data, line):
    """Found by test_any_csv_parses_or_is_a_4xx_naming_where: these were Arrow's own message."""
    error = outcome(data)
    assert isinstance(error, Unprocessable)
    assert error.detail == (
        f"the CSV file is not valid UTF-8 text (line {line} of the file, counting the header "
        "as line 1); save it as UTF-8"
    )


@pytest.mark.parametrize(
    ("mark", "encoding"), [(UTF16_LE_BOM, "UTF-16"), (b"\xff\xfe\x00\x00", "UTF-32")]
)
def test_a_utf16_or_utf32_bom_is_refused_naming_the_encoding(mark, encoding):
    error = outcome(mark + "x,y\n1,0\n2,1\n".encode("utf-16-le"))
    assert isinstance(error, Unprocessable)
    assert error.detail == f"the CSV file is {encoding} text; save it as UTF-8"


@pytest.mark.parametrize(
    "data", [b"", UTF8_BOM, b"x,y", b"x,y\n", b"x,y\r\n", UTF8_BOM + b"a,b,c\n", b"\n"]
)
def test_empty_and_header_only_files_are_refused(data):
    error = outcome(data)
    assert isinstance(error, Unprocessable)
    assert error.detail.endswith("has no data rows (a header alone is not a dataset)")
    assert error.extra["errors"][0]["field"] == "file"


@fast
@given(numeric_tables(max_rows=20, max_features=3), st.integers(-5, 5))
def test_a_single_class_is_refused_naming_the_label_column(table, value):
    features, X, labels = table
    error = outcome(numeric_csv(features, X, [value] * len(labels)))
    assert isinstance(error, Unprocessable)
    assert error.detail == (
        f'label column "y" has a single value ({value!r}); training needs at least 2 classes'
    )
    assert error.extra["errors"] == [{"field": "label", "message": error.detail}]


@settings(DETERMINISTIC, max_examples=20)
@given(nested_columns, st.booleans())
def test_a_parquet_column_of_nested_type_is_refused_naming_it(nested, as_label):
    _, column = nested
    columns = {"x": [1.0, 2.0], "nested": column} if as_label else {"nested": column, "y": [0, 1]}
    error = outcome(parquet_bytes(pa.table(columns)), format="parquet")
    assert isinstance(error, Unprocessable)
    assert error.extra["column"] == "nested"
    assert error.detail.startswith('column "nested" has a nested type ('), error.detail


# Through the API ------------------------------------------------------------------------------


@pytest.fixture
def upload(client) -> Callable[[bytes, str], httpx.Response]:
    """POST /v1/datasets with a raw body; the response."""

    def post(data: bytes, content_type: str) -> httpx.Response:
        return client.post("/v1/datasets", content=data, headers={"Content-Type": content_type})

    return post


def assert_api_answer(response) -> None:
    """201/200 with a dataset, or a 4xx problem with a specific detail; never a 5xx."""
    assert response.status_code < 500, response.text
    if response.status_code in (200, 201):
        assert response.json()["rows"] >= 2
        return
    assert response.status_code in (413, 415, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == response.status_code
    assert problem["detail"]
    if "row" in problem:
        assert f"row {problem['row']}" in problem["detail"]


api = settings(
    DETERMINISTIC, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@api
@given(st.one_of(csv_documents(), numeric_tables().map(lambda t: numeric_csv(*t))))
def test_any_csv_upload_is_stored_or_a_4xx_problem(upload, data):
    assert_api_answer(upload(data, "text/csv"))


@api
@given(parquet_documents())
def test_any_parquet_upload_is_stored_or_a_4xx_problem(upload, data):
    assert_api_answer(upload(data, "application/vnd.apache.parquet"))


@api
@given(table_with_a_bad_cell(st.sampled_from(NON_FINITE)))
def test_an_upload_with_an_infinite_cell_is_a_422_naming_column_and_row(upload, case):
    data, column, row, _ = case
    response = upload(data, "text/csv")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["column"], problem["row"]) == (column, row)
    assert problem["errors"] == [{"field": "file", "message": problem["detail"]}]
