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


def parse(tmp_path, content, *, format="csv", label=None, categorical=(), ignore=(), **limits):
    """parse_dataset on ``content`` (bytes, or a pyarrow Table written as Parquet), with
    ``limits`` as settings."""
    path = tmp_path / f"upload.{format}"
    if isinstance(content, pa.Table):
        pq.write_table(content, path)
    else:
        path.write_bytes(content)
    settings = Settings(database_url="sqlite://").model_copy(update=limits)
    overrides = {"categorical": categorical, "ignore": ignore}
    return parse_dataset(path, format=format, label=label, settings=settings, **overrides)


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
    radius = frame["mean radius"]
    assert parsed.schema[0] == {
        "name": "mean radius",
        "role": "feature",
        "type": "number",
        "kind": "numeric",
        "missing": 0,
        "distinct": radius.nunique(),
        "levels": None,
        "top_levels": None,
        "min": radius.min(),
        "max": radius.max(),
        "mean": pytest.approx(radius.mean(), rel=1e-12),
        "warning": None,
    }
    assert parsed.schema[-1] == {
        "name": "target",
        "role": "label",
        "type": "integer",
        "kind": "numeric",
        "missing": 0,
        "distinct": 2,
        "levels": None,
        "top_levels": None,
        "min": 0.0,
        "max": 1.0,
        "mean": 357 / 569,
        "warning": None,
    }


def test_label_defaults_to_the_last_column_and_may_be_named(tmp_path):
    data = b"a,b,c\n1,0,5\n2,1,6\n3,0,7\n"
    assert parse(tmp_path, data).label == "c"
    named = parse(tmp_path, data, label="b")
    assert (named.features, named.label, named.classes) == (["a", "c"], "b", [0, 1])
    assert named.X.tolist() == [[1, 5], [2, 6], [3, 7]]


def test_a_column_of_words_is_a_categorical_feature_coded_in_the_order_first_met(tmp_path):
    parsed = parse(tmp_path, b"a,b,c\n1,0,y\n2,1,x\n3,0,y\n", label="b")
    c = parsed.schema[2]
    assert (c["type"], c["kind"], c["levels"], c["distinct"]) == (
        "string",
        "categorical",
        ["y", "x"],
        2,
    )
    assert c["top_levels"] == [{"level": "y", "count": 2}, {"level": "x", "count": 1}]
    assert parsed.X[:, 1].tolist() == [0, 1, 0]


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
    flag = parsed.schema[0]
    assert (flag["type"], flag["kind"], flag["levels"]) == (
        "boolean",
        "categorical",
        ["false", "true"],
    )
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


def test_a_word_far_into_a_numeric_column_makes_it_categorical(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "BLOCK_BYTES", 64 * 1024)  # about 300 kB: several blocks
    monkeypatch.setattr(reader, "QUOTE_FREE_BLOCK_BYTES", 16 * 1024)
    lines = [f"{i % 7}.25,{i % 2}" for i in range(30_000)]
    lines[25_000] = "12;13,0"
    parsed = parse(tmp_path, ("x,y\n" + "\n".join(lines) + "\n").encode())
    x = parsed.schema[0]
    assert (x["type"], x["kind"], x["distinct"]) == ("string", "categorical", 8)
    assert x["levels"] == [f"{i}.25" for i in range(7)] + ["12;13"]  # the file read again
    assert parsed.X[:9, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1]
    assert parsed.X[25_000, 0] == 7


def test_a_column_with_more_levels_than_max_levels_is_left_out_with_a_warning(tmp_path):
    rows = "".join(f"w{i % 30},{i % 2}\n" for i in range(100))
    parsed = parse(tmp_path, f"x,y\n{rows}".encode(), max_levels=20)
    x = parsed.schema[0]
    assert (x["role"], x["distinct"], x["levels"], x["top_levels"]) == ("ignored", None, None, None)
    assert x["warning"] == (
        "more than 20 distinct levels (BACKPROP_MAX_LEVELS, max_levels): left out of training"
    )
    assert parsed.features == ["x"]  # still a column of X, though training leaves it out


def test_a_numeric_column_past_max_levels_has_no_distinct_count_but_stays(tmp_path):
    rows = "".join(f"{i}.5,{i % 2}\n" for i in range(100))
    x = parse(tmp_path, f"x,y\n{rows}".encode(), max_levels=20).schema[0]
    assert (x["role"], x["distinct"], x["min"], x["max"]) == ("feature", None, 0.5, 99.5)


def test_boolean_text_with_a_number_in_it_is_a_column_of_words(tmp_path):
    parsed = parse(tmp_path, b"flag,y\ntrue,0\nfalse,1\n1.5,0\n")
    assert parsed.schema[0]["levels"] == ["true", "false", "1.5"]
    assert parsed.schema[0]["type"] == "string"


def test_missing_feature_cells_are_nan_and_counted(tmp_path):
    parsed = parse(tmp_path, b"x,w,y\n1,2,0\n3,4,1\n,5,0\n")
    assert np.isnan(parsed.X[2, 0])
    assert parsed.schema[0]["missing"] == 1
    assert (parsed.schema[0]["min"], parsed.schema[0]["mean"]) == (1.0, 2.0)


@pytest.mark.parametrize("token", ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", " NA "])
def test_null_tokens_are_missing_in_numbers_and_in_words(tmp_path, token):
    parsed = parse(tmp_path, f"x,w,y\n1,a,0\n{token},{token},1\n3,b,0\n".encode())
    assert [c["missing"] for c in parsed.schema[:2]] == [1, 1]
    assert parsed.schema[0]["type"] == "integer"
    assert parsed.schema[1]["levels"] == ["a", "b"]
    assert np.isnan(parsed.X[1]).all()


@pytest.mark.parametrize("token", ["inf", "-inf", "Infinity", "1e999"])
def test_non_finite_numbers_are_refused_with_the_cell_as_written(tmp_path, token):
    error = refusal(tmp_path, f"x,y\n1,0\n2,1\n{token},0\n".encode())
    assert error.detail == f'column "x" row 3: value "{token}" is not finite {NOTE}'


def test_an_all_missing_feature_column_is_refused(tmp_path):
    error = refusal(tmp_path, b"x,w,y\n1,,0\n2,NA,1\n")
    assert error.detail == (
        'column "w" has no values: all 2 of its cells are missing; leave it out with ignore=w'
    )
    assert error.extra["column"] == "w"


def test_a_categorical_of_one_level_is_refused_unless_some_cell_is_missing(tmp_path):
    error = refusal(tmp_path, b"x,w,y\n1,a,0\n2, a,1\n")
    assert error.detail == (
        'column "w" holds one level ("a") in every row: a column of one level tells no rows '
        "apart; leave it out with ignore=w"
    )
    assert parse(tmp_path, b"x,w,y\n1,a,0\n2,,1\n").schema[1]["distinct"] == 1


def test_a_boolean_column_of_one_value_is_a_column_of_one_level(tmp_path):
    error = refusal(tmp_path, b"x,w,y\n1,true,0\n2,true,1\n")
    assert error.detail.startswith('column "w" holds one level ("true") in every row')


def test_a_constant_numeric_column_is_kept(tmp_path):
    assert parse(tmp_path, b"x,w,y\n1,0,0\n2,0,1\n").schema[1]["role"] == "feature"


def test_unique_words_are_left_out_from_ten_rows_on(tmp_path):
    rows = "".join(f"name {i},{i % 3},{i % 2}\n" for i in range(10))
    parsed = parse(tmp_path, f"who,x,y\n{rows}".encode())
    assert parsed.schema[0]["role"] == "ignored"
    assert parsed.schema[0]["warning"] == "unique per row (names or ids): left out of training"
    nine = parse(tmp_path, f"who,x,y\n{rows[: rows.index('name 9')]}".encode())
    assert nine.schema[0]["role"] == "feature"


def test_a_row_number_is_left_out_but_an_id_with_a_gap_is_not(tmp_path):
    rows = [f"{i},{i % 3},{i % 2}" for i in range(5, 17)]
    parsed = parse(tmp_path, ("id,x,y\n" + "\n".join(rows) + "\n").encode())
    assert parsed.schema[0]["warning"] == (
        "a row number (each value is the previous one + 1): left out of training"
    )
    rows[6] = "99,0,0"
    parsed = parse(tmp_path, ("id,x,y\n" + "\n".join(rows) + "\n").encode())
    assert (parsed.schema[0]["role"], parsed.schema[0]["warning"]) == ("feature", None)


def test_missing_labels_are_refused_with_their_count_and_first_rows(tmp_path):
    rows = "".join(f"{i},{'' if i % 3 == 0 else 'a' if i % 2 else 'b'}\n" for i in range(1, 25))
    error = refusal(tmp_path, f"x,y\n{rows}".encode())
    assert error.detail == (
        f'label column "y" is missing in 8 rows: rows 3, 6, 9, 12, 15 and 3 more {NOTE}; '
        "every row needs its label: fill them in or leave those rows out"
    )
    assert (error.extra["rows"], error.extra["missing"]) == ([3, 6, 9, 12, 15], 8)


def test_a_single_missing_label_is_said_in_the_singular(tmp_path):
    error = refusal(tmp_path, b"x,y\n1,a\n2, NA\n3,b\n")
    assert error.detail.startswith('label column "y" is missing in 1 row: row 2 (row 1')


# What the upload names: categorical= and ignore= ----------------------------------------------


def test_categorical_integers_are_coded_by_their_sorted_levels(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "QUOTE_FREE_BLOCK_BYTES", 64)  # met 30, 7, 100 over batches
    rows = "".join(f"{store},{i % 2}\n" for i, store in enumerate([30, 7, 100, 7, 30, 7]))
    parsed = parse(tmp_path, f"store,y\n{rows}".encode(), categorical=["store"])
    store = parsed.schema[0]
    assert (store["type"], store["kind"], store["levels"]) == (
        "integer",
        "categorical",
        ["7", "30", "100"],
    )
    assert parsed.X[:, 0].tolist() == [1, 0, 2, 0, 1, 0]


def test_categorical_text_of_integers_is_coded_by_their_sorted_levels(tmp_path):
    """Parquet text that reads as integers, named categorical: levels as numbers name them
    ("007" is 7), sorted numerically; the file is read again to code them in that order."""
    table = pa.table({"store": ["30", " 7", "100", "007", None], "y": [0, 1, 0, 1, 0]})
    parsed = parse(tmp_path, table, format="parquet", categorical=["store"])
    store = parsed.schema[0]
    assert (store["type"], store["kind"], store["missing"]) == ("integer", "categorical", 1)
    assert store["levels"] == ["7", "30", "100"]
    assert parsed.X[:4, 0].tolist() == [1, 0, 2, 0]
    assert np.isnan(parsed.X[4, 0])


def test_ignored_columns_are_not_read_whatever_they_hold(tmp_path):
    parsed = parse(tmp_path, b"x,notes,y\n1,,0\n2,,1\n", ignore=["notes"])
    assert parsed.features == ["x"]
    assert parsed.X.shape == (2, 1)
    assert parsed.schema[1]["role"] == "ignored"


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
    """Booleans are categorical (false, true: codes 0, 1), dictionaries of text too."""
    table = pa.table(
        {
            "count": pa.array([1, 2, 3], pa.int32()),
            "ratio": pa.array([0.5, 1.5, 2.5], pa.float32()),
            "flag": [True, False, True],
            "price": pa.array([decimal.Decimal("1.25")] * 3, pa.decimal128(5, 2)),
            "kind": pa.array(["b", "a", "b"]).dictionary_encode(),
        }
    )
    parsed = parse(tmp_path, table, format="parquet", label="count")
    assert parsed.features == ["ratio", "flag", "price", "kind"]
    assert [(c["type"], c["kind"]) for c in parsed.schema] == [
        ("integer", "numeric"),
        ("number", "numeric"),
        ("boolean", "categorical"),
        ("number", "numeric"),
        ("string", "categorical"),
    ]
    assert parsed.schema[4]["levels"] == ["b", "a"]
    assert parsed.X.tolist() == [[0.5, 1, 1.25, 0], [1.5, 0, 1.25, 1], [2.5, 1, 1.25, 0]]


def test_parquet_boolean_labels(tmp_path):
    parsed = parse(tmp_path, pa.table({"x": [1.0, 2.0], "y": [True, False]}), format="parquet")
    assert (parsed.label_type, parsed.classes) == ("boolean", [False, True])


def test_parquet_nulls_and_nans_are_missing(tmp_path):
    table = pa.table(
        {"x": [1.0, None, float("nan")], "w": pa.array(["a", None, "b"]), "y": [0, 1, 0]}
    )
    parsed = parse(tmp_path, table, format="parquet")
    assert [c["missing"] for c in parsed.schema] == [2, 1, 0]
    assert np.isnan(parsed.X[1:, 0]).all()


def test_parquet_infinite_feature_names_the_row(tmp_path):
    table = pa.table({"x": [1.0, 2.0, float("-inf")], "y": [0, 1, 0]})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == f'column "x" row 3: value -inf is not finite {NOTE}'


def test_parquet_nan_label_is_refused(tmp_path):
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": [0.0, float("inf"), 1.0]})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == f'column "y" row 2: label inf is not finite {NOTE}'


def test_parquet_timestamp_feature_is_refused_naming_ignore(tmp_path):
    # Parquet has no seconds unit: the column comes back as timestamp[ms].
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5)
    table = pa.table({"when": pa.array([moment, moment], pa.timestamp("s")), "y": [0, 1]})
    error = refusal(tmp_path, table, format="parquet")
    assert error.detail == (
        'column "when" has the type timestamp[ms]; feature columns must hold numbers, text or '
        "booleans: leave it out with ignore=when"
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
