"""The real tables load offline, have what they are chosen for, and a sane reference."""

import io

import pandas as pd
import pytest

from tests.real_tables import REAL_TABLES, reference_accuracy, split, to_csv_bytes

NAMES = sorted(REAL_TABLES)
COMPLETE = {"credit", "shoppers"}  # no missing cells; the others have some
LABELS = {
    "penguins": "species",
    "cars": "Origin",
    "credit": "default",
    "shoppers": "Purchase",
    "passengers": "survived",
}


@pytest.fixture(scope="module", params=NAMES)
def table_and_frame(request):
    table = REAL_TABLES[request.param]
    return table, table.load()


def test_the_five_tables_are_named_by_their_labels():
    assert {name: table.label for name, table in REAL_TABLES.items()} == LABELS


def test_each_table_has_its_label_and_a_string_column(table_and_frame):
    table, frame = table_and_frame
    assert table.label in frame.columns
    assert frame[table.label].nunique() >= 2
    features = frame.drop(columns=[table.label, *table.id_columns])
    assert any(pd.api.types.is_string_dtype(features[c]) for c in features.columns)


def test_tables_other_than_credit_and_shoppers_have_missing_cells(table_and_frame):
    table, frame = table_and_frame
    assert bool(frame.isna().any().any()) == (table.name not in COMPLETE)


def test_cars_year_is_a_category_of_model_years():
    frame = REAL_TABLES["cars"].load()
    assert sorted(frame["Year"].unique())[:2] == ["1970", "1971"]
    categorical, _ = REAL_TABLES["cars"].feature_columns(frame)
    assert "Year" in categorical


def test_id_columns_are_neither_categories_nor_numbers(table_and_frame):
    table, frame = table_and_frame
    categorical, numeric = table.feature_columns(frame)
    assert set(table.id_columns) <= set(frame.columns)
    assert not set(table.id_columns) & {*categorical, *numeric, table.label}
    assert set(categorical) | set(numeric) | {table.label, *table.id_columns} == set(frame.columns)


def test_split_is_stratified_three_to_one(table_and_frame):
    table, frame = table_and_frame
    train, test = split(frame, table.label, seed=0)
    assert len(train) + len(test) == len(frame)
    assert abs(len(test) - len(frame) / 4) <= 1
    shares = frame[table.label].value_counts(normalize=True)
    test_shares = test[table.label].value_counts(normalize=True)
    assert (test_shares - shares).abs().max() < 0.02


def test_csv_bytes_write_missing_cells_as_empty(table_and_frame):
    _, frame = table_and_frame
    data = to_csv_bytes(frame)
    back = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    assert list(back.columns) == list(frame.columns)
    assert len(back) == len(frame)
    empty = (back.astype(str) == "").sum().sum()
    assert empty == frame.isna().sum().sum()


def test_reference_accuracy_is_sane(table_and_frame):
    table, frame = table_and_frame
    categorical, numeric = table.feature_columns(frame)
    train, test = split(frame, table.label, seed=0)
    assert reference_accuracy(train, test, table.label, categorical, numeric) > 0.7
