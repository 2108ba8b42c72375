"""Reading uploads: CSV and Parquet become a float64 matrix and classes, or a specific 4xx."""

import datetime
import decimal
import io

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from service.core.errors import PayloadTooLarge, Unprocessable
from service.core.settings import Settings
from service.datasets import reader
from service.datasets.reader import parse_dataset

NOTE = "(row 1 is the first data row)"


def parse(tmp_path, content, *, format="csv", label=None, **limits):
    """parse_dataset on ``content`` (bytes, or a pyarrow Table written as Parquet)."""
    path = tmp_path / f"upload.{format}"
    if isinstance(content, pa.Table):
        pq.write_table(content, path)
    else:
        path.write_bytes(content)
    settings = Settings(database_url="sqlite://").model_copy(update=limits)
    return parse_dataset(path, format=format, label=label, settings=settings)


def refusal(tmp_path, content, error=Unprocessable, **options):
    with pytest.raises(error) as caught:
        parse(tmp_path, content, **options)
    return caught.value


# What reads ---------------------------------------------------------------------------------


def test_breast_cancer_csv_reads_as_569_rows_30_features_and_classes_0_1(tmp_path):
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    parsed = parse(tmp_path, frame.to_csv(index=False).encode(), label="target")
    assert parsed.rows == 569
    assert parsed.features == list(frame.columns[:-1])
    assert parsed.label == "target"
    assert parsed.label_type == "integer"
    assert parsed.classes == [0, 1]
    assert parsed.class_counts == {"0": 212, "1": 357}
    assert parsed.X.dtype == np.float64
    assert parsed.X.flags.c_contiguous
    np.testing.assert_array_equal(parsed.X, frame.iloc[:, :-1].to_numpy())
    np.testing.assert_array_equal(parsed.y_index, frame["target"].to_numpy())
    assert parsed.y_index.dtype == np.int32
    assert parsed.schema[0] == {"name": "mean radius", "type": "number", "role": "feature"}
    assert parsed.schema[-1] == {"name": "target", "type": "integer", "role": "label"}


def test_label_defaults_to_the_last_column_and_may_be_named(tmp_path):
    data = b"a,b,c\n1,0,5\n2,1,6\n3,0,7\n"
    assert parse(tmp_path, data).label == "c"
    named = parse(tmp_path, data, label="b")
    assert (named.features, named.label, named.classes) == (["a", "c"], "b", [0, 1])
    assert named.X.tolist() == [[1, 5], [2, 6], [3, 7]]


def test_a_named_label_column_is_refused_as_feature_if_not_numeric(tmp_path):
    error = refusal(tmp_path, b"a,b,c\n1,0,x\n2,1,y\n", label="b")
    assert error.detail == f'column "c" row 1: "x" is not a number {NOTE}'


def test_string_labels_are_sorted_classes_and_rows_point_into_them(tmp_path):
    parsed = parse(tmp_path, b"x,species\n1.5,setosa\n2.5,virginica\n0.5,setosa\n3,versicolor\n")
    assert parsed.label_type == "string"
    assert parsed.classes == ["setosa", "versicolor", "virginica"]
    assert parsed.y_index.tolist() == [0, 2, 0, 1]
    assert parsed.class_counts == {"setosa": 2, "versicolor": 1, "virginica": 1}
    assert parsed.labels.tolist() == ["setosa", "virginica", "setosa", "versicolor"]


def test_boolean_cells_read_as_booleans_in_features_and_labels(tmp_path):
    parsed = parse(tmp_path, b"flag,x,ok\ntrue,1,True\nfalse,2,FALSE\ntrue,3,false\n")
    assert parsed.X[:, 0].tolist() == [1.0, 0.0, 1.0]
    assert parsed.schema[0]["type"] == "boolean"
    assert parsed.label_type == "boolean"
    assert parsed.classes == [False, True]
    assert parsed.class_counts == {"False": 2, "True": 1}


def test_integral_float_labels_become_integer_classes(tmp_path):
    parsed = parse(tmp_path, b"x,y\n1,0.0\n2,1.0\n3,-0.0\n")
    assert parsed.label_type == "number"
    assert parsed.classes == [0, 1]
    assert all(type(c) is int for c in parsed.classes)
    assert parsed.class_counts == {"0": 2, "1": 1}


def test_fractional_labels_stay_numbers(tmp_path):
    parsed = parse(tmp_path, b"x,y\n1,0.5\n2,1.5\n3,0.5\n")
    assert parsed.classes == [0.5, 1.5]
    assert parsed.class_counts == {"0.5": 2, "1.5": 1}


def test_cells_with_spaces_around_them_are_trimmed(tmp_path):
    parsed = parse(tmp_path, b"a, b, label\n1, 2.5, yes\n 3 ,4, no\n")
    assert parsed.features == ["a", "b"]
    assert parsed.X.tolist() == [[1.0, 2.5], [3.0, 4.0]]
    assert parsed.classes == ["no", "yes"]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    parsed = parse(tmp_path, "\ufeffalpha,beta\n1,0\n2,1\n".encode())
    assert parsed.features == ["alpha"]


def test_quoted_cells_and_crlf_line_ends_read(tmp_path):
    parsed = parse(tmp_path, b'"a","b"\r\n"1","x, y"\r\n"2","z"\r\n')
    assert parsed.classes == ["x, y", "z"]


# What is refused, and the detail that says why -------------------------------------------------


def test_non_numeric_feature_names_the_column_and_first_bad_row(tmp_path):
    rows = "".join(f"{i},{i % 2}\n" for i in range(16)) + "abc,1\n17,0\nxyz,1\n"
    error = refusal(tmp_path, f"age,y\n{rows}".encode())
    assert error.detail == f'column "age" row 17: "abc" is not a number {NOTE}'
    assert (error.extra["column"], error.extra["row"]) == ("age", 17)


def test_first_bad_row_is_found_beyond_the_first_block(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "BLOCK_BYTES", 64 * 1024)  # about 300 kB: several blocks
    monkeypatch.setattr(reader, "QUOTE_FREE_BLOCK_BYTES", 16 * 1024)
    lines = [f"{i}.25,{i % 2}" for i in range(30_000)]
    lines[25_000] = "12;13,0"
    data = ("x,y\n" + "\n".join(lines) + "\n").encode()
    error = refusal(tmp_path, data)
    assert error.detail == f'column "x" row 25001: "12;13" is not a number {NOTE}'


def test_a_row_longer_than_a_block_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "BLOCK_BYTES", 2**20)
    error = refusal(tmp_path, b"x,y\n1,0\n" + b"2" * 2**21 + b",1\n")
    assert error.detail == "a row of the CSV file is longer than 1 MiB"


def test_a_long_cell_is_quoted_shortened(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,0\n" + b"a" * 100 + b",1\n")
    assert error.detail == f'column "x" row 2: "{"a" * 40}..." is not a number {NOTE}'


def test_a_boolean_column_with_a_number_in_it_says_a_boolean_was_expected(tmp_path):
    error = refusal(tmp_path, b"flag,y\ntrue,0\nfalse,1\n1.5,0\n")
    assert error.detail == f'column "flag" row 3: "1.5" is not a boolean {NOTE}'


def test_missing_feature_value_names_the_row(tmp_path):
    error = refusal(tmp_path, b"x,w,y\n1,2,0\n3,4,1\n,5,0\n")
    assert error.detail == f'column "x" row 3: value is missing {NOTE}'


def test_a_missing_value_before_a_bad_one_is_the_one_reported(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,0\n,1\nabc,0\n")
    assert error.detail == f'column "x" row 2: value is missing {NOTE}'


@pytest.mark.parametrize("token", ["inf", "-inf", "nan", "NaN", "Infinity"])
def test_non_finite_tokens_are_refused_with_the_cell_as_written(tmp_path, token):
    error = refusal(tmp_path, f"x,y\n1,0\n2,1\n{token},0\n".encode())
    assert error.detail == f'column "x" row 3: value "{token}" is not finite {NOTE}'


def test_na_is_not_a_number(tmp_path):
    error = refusal(tmp_path, b"x,y\nNA,0\n2,1\n")
    assert error.detail == f'column "x" row 1: "NA" is not a number {NOTE}'


def test_missing_label_names_the_row(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,a\n2,\n3,b\n")
    assert error.detail == f'column "y" row 2: label is missing {NOTE}'


def test_unknown_label_column_lists_the_columns(tmp_path):
    error = refusal(tmp_path, b"a,b\n1,0\n2,1\n", label="target")
    assert error.detail == 'label column "target" is not in the file; its columns are "a", "b"'
    assert error.extra["errors"] == [{"field": "label", "message": error.detail}]


def test_a_single_class_is_refused(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,1\n2,1\n")
    assert (
        error.detail == 'label column "y" has a single value (1); training needs at least 2 classes'
    )


def test_a_header_alone_is_refused(tmp_path):
    error = refusal(tmp_path, b"x,y\n")
    assert error.detail == "the file has no data rows (a header alone is not a dataset)"


def test_a_header_without_a_line_end_is_refused(tmp_path):
    error = refusal(tmp_path, b"x,y")
    assert error.detail == "the CSV file has no data rows (a header alone is not a dataset)"


def test_one_data_row_is_refused(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,0\n")
    assert error.detail == "the file has 1 data row; training needs at least 2"


@pytest.mark.parametrize("data", [b"y\n0\n1\n", b"x;y\n1;0\n2;1\n", b"x\ty\n1\t0\n2\t1\n"])
def test_a_single_column_is_refused(tmp_path, data):
    error = refusal(tmp_path, data)
    assert error.detail == (
        "the file has 1 column; a dataset needs at least one feature column and a label column "
        "(CSV columns are separated by commas)"
    )


def test_ragged_rows_name_the_row(tmp_path):
    error = refusal(tmp_path, b"a,b,c\n1,2,0\n3,4,1\n5,6\n7,8,0\n")
    assert error.detail == f"CSV row 3 has 2 fields but the header has 3 columns {NOTE}"


def test_duplicate_column_names_are_refused(tmp_path):
    error = refusal(tmp_path, b"a,b,a,y\n1,2,3,0\n4,5,6,1\n")
    assert error.detail == 'column names must be unique; repeated: "a"'


def test_an_unnamed_column_is_refused(tmp_path):
    error = refusal(tmp_path, b",a,y\n0,1,0\n1,2,1\n")
    assert error.detail == "column 1 has no name; every column needs one in the header"


def test_invalid_utf8_in_a_cell_names_the_line(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,a\n2,b\xff\n")
    assert error.detail == (
        "the CSV file is not valid UTF-8 text (line 3 of the file, counting the header as "
        "line 1); save it as UTF-8"
    )


def test_invalid_utf8_in_the_header_is_refused(tmp_path):
    error = refusal(tmp_path, b"x\xff,y\n1,0\n2,1\n")
    assert error.detail == "the CSV header is not valid UTF-8 text; save the file as UTF-8"


@pytest.mark.parametrize(("encoding", "name"), [("utf-16", "UTF-16"), ("utf-32", "UTF-32")])
def test_utf16_and_utf32_text_is_refused(tmp_path, encoding, name):
    error = refusal(tmp_path, "x,y\n1,0\n2,1\n".encode(encoding))
    assert error.detail == f"the CSV file is {name} text; save it as UTF-8"


def test_binary_bytes_sent_as_csv_are_refused_as_not_utf8(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,0\n" + bytes(range(128, 256)) * 4 + b"\n")
    assert error.detail == (
        "the CSV file is not valid UTF-8 text (line 3 of the file, counting the header as "
        "line 1); save it as UTF-8"
    )


def test_latin1_text_is_refused_as_not_utf8(tmp_path):
    error = refusal(tmp_path, "x,label\n1,café\n2,thé\n".encode("latin-1"))
    assert "not valid UTF-8 text (line 2" in error.detail


# Limits --------------------------------------------------------------------------------------


def test_more_rows_than_max_rows_is_413_naming_the_setting(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,0\n2,1\n3,0\n", PayloadTooLarge, max_rows=2)
    assert error.detail == (
        "the file has more than 2 rows; at most 2 are allowed (BACKPROP_MAX_ROWS, max_rows)"
    )
    assert error.extra["limit"] == 2


def test_more_columns_than_max_columns_is_413_naming_the_setting(tmp_path):
    error = refusal(tmp_path, b"a,b,c,y\n1,2,3,0\n4,5,6,1\n", PayloadTooLarge, max_columns=3)
    assert error.detail == (
        "the file has 4 columns; at most 3 are allowed (BACKPROP_MAX_COLUMNS, max_columns)"
    )


def test_more_classes_than_max_classes_is_422_naming_the_setting(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,a\n2,b\n3,c\n", max_classes=2)
    assert error.detail == (
        'label column "y" has 3 distinct values; at most 2 classes are allowed '
        "(BACKPROP_MAX_CLASSES, max_classes). Is it the right label column?"
    )


# Parquet -------------------------------------------------------------------------------------


def test_parquet_columns_keep_their_types(tmp_path):
    table = pa.table(
        {
            "count": pa.array([1, 2, 3], pa.int32()),
            "ratio": pa.array([0.5, 1.5, 2.5], pa.float32()),
            "flag": [True, False, True],
            "price": pa.array([decimal.Decimal("1.25")] * 3, pa.decimal128(5, 2)),
            "kind": pa.array(["b", "a", "b"]).dictionary_encode(),
        }
    )
    parsed = parse(tmp_path, table, format="parquet")
    assert parsed.features == ["count", "ratio", "flag", "price"]
    assert [c["type"] for c in parsed.schema] == [
        "integer",
        "number",
        "boolean",
        "number",
        "string",
    ]
    assert parsed.X.tolist() == [[1, 0.5, 1, 1.25], [2, 1.5, 0, 1.25], [3, 2.5, 1, 1.25]]
    assert parsed.classes == ["a", "b"]
    assert parsed.y_index.tolist() == [1, 0, 1]


def test_parquet_boolean_labels(tmp_path):
    parsed = parse(tmp_path, pa.table({"x": [1.0, 2.0], "y": [True, False]}), format="parquet")
    assert (parsed.label_type, parsed.classes) == ("boolean", [False, True])


def test_parquet_null_feature_names_the_row(tmp_path):
    table = pa.table({"x": [1.0, None, 3.0], "y": [0, 1, 0]})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == f'column "x" row 2: value is missing {NOTE}'


def test_parquet_nan_feature_names_the_row(tmp_path):
    table = pa.table({"x": [1.0, 2.0, float("nan")], "y": [0, 1, 0]})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == f'column "x" row 3: value nan is not finite {NOTE}'


def test_parquet_nan_label_is_refused(tmp_path):
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": [0.0, float("inf"), 1.0]})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == f'column "y" row 2: label inf is not finite {NOTE}'


def test_parquet_timestamp_feature_is_not_a_number(tmp_path):
    # Parquet has no seconds unit: the column comes back as timestamp[ms].
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5)
    table = pa.table({"when": pa.array([moment, moment], pa.timestamp("s")), "y": [0, 1]})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == (
        f'column "when" row 1: 2026-01-02 03:04:05 (timestamp[ms]) is not a number {NOTE}'
    )


def test_parquet_timestamp_label_is_refused(tmp_path):
    moment = datetime.datetime(2026, 1, 2)
    table = pa.table({"x": [1, 2], "when": pa.array([moment, moment], pa.timestamp("s"))})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == (
        'label column "when" has the type timestamp[ms]; '
        "labels must be numbers, strings or booleans"
    )


@pytest.mark.parametrize(
    ("column", "type_name"),
    [
        (pa.array([[1, 2], [3]]), "list"),
        (pa.array([{"a": 1}, {"a": 2}]), "struct"),
        (
            pa.array([[("k", 1)], [("k", 2)]], pa.map_(pa.string(), pa.int64())),
            "map",
        ),
    ],
)
def test_parquet_nested_columns_are_refused(tmp_path, column, type_name):
    table = pa.table({"x": [1.0, 2.0], "nested": column, "y": [0, 1]})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == (
        f'column "nested" has a nested type ({type_name}); only flat columns of numbers, '
        "strings or booleans can be used"
    )


def test_bytes_that_are_not_parquet_are_refused(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,0\n", format="parquet")
    assert error.detail.startswith("the body is not a readable Parquet file: ")


def test_parquet_row_limit_is_checked_from_the_footer(tmp_path):
    table = pa.table({"x": list(range(10)), "y": [0, 1] * 5})
    error = refusal(tmp_path, table, PayloadTooLarge, format="parquet", max_rows=5)
    assert error.detail == (
        "the file has 10 rows; at most 5 are allowed (BACKPROP_MAX_ROWS, max_rows)"
    )


def test_parquet_and_csv_of_the_same_data_parse_alike(tmp_path):
    table = pa.table({"a": [0.25, 1.5, -3.0], "b": [1, 2, 3], "y": ["n", "y", "n"]})
    csv = io.BytesIO()
    pyarrow.csv.write_csv(table, csv)
    from_csv = parse(tmp_path, csv.getvalue())
    from_parquet = parse(tmp_path, table, format="parquet")
    np.testing.assert_array_equal(from_csv.X, from_parquet.X)
    assert from_csv.classes == from_parquet.classes
    assert from_csv.schema == from_parquet.schema


def test_integers_too_large_for_int64_read_as_numbers(tmp_path):
    parsed = parse(tmp_path, b"x,y\n99999999999999999999,1\n2,99999999999999999999\n")
    assert parsed.X[:, 0].tolist() == [1e20, 2.0]
    assert parsed.schema[0]["type"] == "number"
    assert parsed.classes == [1.0, 1e20]  # past 2**53 integral floats stay floats


def test_parquet_unsigned_features_past_2_to_the_53_round(tmp_path):
    table = pa.table({"x": pa.array([1, 2**64 - 1], pa.uint64()), "y": [0, 1]})
    assert parse(tmp_path, table, format="parquet").X[:, 0].tolist() == [1.0, 2.0**64]


def test_parquet_labels_past_int64_are_refused(tmp_path):
    table = pa.table({"x": [1, 2], "y": pa.array([0, 2**64 - 1], pa.uint64())})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == 'label column "y" has integers past 2**63 - 1; use smaller codes or text'


def test_parquet_binary_label_is_refused(tmp_path):
    table = pa.table({"x": [1, 2], "y": pa.array([b"a", b"b"])})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == (
        'label column "y" has the type binary; labels must be numbers, strings or booleans'
    )


def test_parquet_numeric_text_features_read_as_numbers(tmp_path):
    table = pa.table({"x": ["1.5", "2"], "y": [0, 1]})
    assert parse(tmp_path, table, format="parquet").X[:, 0].tolist() == [1.5, 2.0]
