"""GET /v1/datasets/{id}/rows: a few stored rows, decoded back to the file's values."""

import math

import numpy as np
import pytest
from palmerpenguins import load_penguins

from service.core.tables import DatasetChunk
from service.datasets.storage import CHUNK_BYTES
from tests.service.factories import add_dataset


def upload_penguins(client) -> dict:
    body = load_penguins().to_csv(index=False).encode()
    files = {"file": ("penguins.csv", body, "text/csv")}
    response = client.post("/v1/datasets", params={"label": "species"}, files=files)
    assert response.status_code == 201, response.text
    return response.json()


def file_value(value: object) -> object:
    """A pandas cell as the API gives it back: NaN is null, a count is a float."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return float(value) if isinstance(value, (int, float, np.number)) else value


def test_rows_are_the_files_own_values_with_missing_cells_null(client):
    dataset = upload_penguins(client)
    frame = load_penguins()
    # Row 3 has every measure missing and no sex; rows 8-10 have a sex missing.
    page = client.get(f"/v1/datasets/{dataset['id']}/rows", params={"offset": 2, "limit": 9})
    assert page.status_code == 200, page.text
    body = page.json()
    assert (body["dataset_id"], body["offset"], body["total_rows"]) == (dataset["id"], 2, 344)
    assert [row["row"] for row in body["rows"]] == list(range(2, 11))
    for row in body["rows"]:
        expected = frame.iloc[row["row"]]
        assert row["label"] == expected["species"]
        assert row["values"] == {name: file_value(expected[name]) for name in dataset["features"]}
    assert body["rows"][1]["values"]["sex"] is None
    assert body["rows"][1]["values"]["bill_length_mm"] is None
    assert body["rows"][0]["values"]["island"] == "Torgersen"


def test_rows_past_the_end_are_none_and_the_last_page_is_short(client):
    dataset = upload_penguins(client)
    url = f"/v1/datasets/{dataset['id']}/rows"
    assert [r["row"] for r in client.get(url, params={"offset": 340}).json()["rows"]] == [
        340,
        341,
        342,
        343,
    ]
    assert client.get(url, params={"offset": 344}).json()["rows"] == []


def test_rows_that_straddle_two_stored_chunks(client, database):
    # 70,000 rows x 10 float64 = 5.6 MB: two chunks, the boundary inside row 52,428.
    dataset_id = add_dataset(database, rows=70_000, features=10)
    with database.reads() as session:
        chunks = [
            np.frombuffer(chunk.data, dtype="<f8")
            for chunk in session.query(DatasetChunk)
            .filter_by(dataset_id=dataset_id, part="X")
            .order_by(DatasetChunk.index)
        ]
    assert len(chunks) == 2
    assert len(chunks[0]) * 8 == CHUNK_BYTES
    X = np.concatenate(chunks).reshape(70_000, 10)
    boundary_row = CHUNK_BYTES // 8 // 10  # 52,428: its cells begin in chunk 0, end in 1
    page = client.get(
        f"/v1/datasets/{dataset_id}/rows", params={"offset": boundary_row - 1, "limit": 3}
    ).json()
    for row in page["rows"]:
        assert list(row["values"].values()) == X[row["row"]].tolist()
        assert row["label"] == row["row"] % 2  # the factory's classes take turns


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"offset": -1}, "query.offset"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
    ],
)
def test_a_bad_range_is_a_422_naming_the_parameter(client, database, params, field):
    dataset_id = add_dataset(database)
    response = client.get(f"/v1/datasets/{dataset_id}/rows", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.json()["detail"]


def test_an_unknown_dataset_is_a_404(client):
    response = client.get("/v1/datasets/" + "0" * 32 + "/rows")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
