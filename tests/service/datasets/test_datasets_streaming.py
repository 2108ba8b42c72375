"""Streamed uploads on SQLite and PostgreSQL: rows go to the database as they are read, in
the stored chunk format (the format readers read), and a file whose column is retyped
midway (the stream starts over) is stored once, or refused with nothing left stored."""

import io
import os
import sqlite3
from contextlib import closing

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from service.core.tables import Dataset, DatasetChunk
from service.datasets import reader, storage
from service.datasets.reader import parse_dataset
from service.datasets.storage import ChunkWriter

NOTE = "(row 1 is the first data row)"
SMALL_CHUNK = 1000  # bytes: not a multiple of a row's, so rows straddle chunks


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of SMALL_CHUNK bytes, so that a small file is stored in many."""
    monkeypatch.setattr(storage, "CHUNK_BYTES", SMALL_CHUNK)


def numbers_csv(X: np.ndarray, labels: list[str], *, last_cell: str | None = None) -> bytes:
    """X (m, n_x) as repr'd floats and a label column; ``last_cell`` replaces the last row's
    first cell."""
    lines = [",".join([*(f"x{j}" for j in range(X.shape[1])), "y"])]
    lines += [",".join([*map(repr, row), y]) for row, y in zip(X.tolist(), labels, strict=True)]
    if last_cell is not None:
        lines[-1] = ",".join([last_cell, *lines[-1].split(",")[1:]])
    return ("\n".join(lines) + "\n").encode()


def random_table(m: int, n_x: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n_x)) * 10.0 ** rng.integers(-3, 4, size=(m, n_x))
    return X, [["cat", "dog", "owl"][i] for i in rng.integers(0, 3, size=m)]


def stored_chunks(database, dataset_id) -> list[tuple[str, int, bytes]]:
    with database.reads() as session:
        rows = session.execute(
            select(DatasetChunk.part, DatasetChunk.index, DatasetChunk.data)
            .where(DatasetChunk.dataset_id == dataset_id)
            .order_by(DatasetChunk.part, DatasetChunk.index)
        )
        return [(part, index, bytes(data)) for part, index, data in rows]


def chunks_of(X: np.ndarray, y_index: np.ndarray) -> list[tuple[str, int, bytes]]:
    """The chunks the format prescribes: each part's bytes cut every CHUNK_BYTES, from 0."""
    return part_chunks("X", X) + part_chunks("y", y_index)


def part_chunks(part: str, values: np.ndarray) -> list[tuple[str, int, bytes]]:
    raw = np.ascontiguousarray(values, dtype=storage.PARTS[part]).tobytes()
    starts = range(0, max(len(raw), 1), storage.CHUNK_BYTES)
    return [(part, i, raw[start : start + storage.CHUNK_BYTES]) for i, start in enumerate(starts)]


def in_memory(tmp_path, data: bytes, settings, format="csv"):
    """The reader's dataset of ``data`` with its matrix gathered in memory (parse_dataset):
    what the stored chunks must hold."""
    path = tmp_path / f"upload.{format}"
    path.write_bytes(data)
    return parse_dataset(path, format=format, label=None, settings=settings)


def assert_stored_as_read(client, app, body, expected) -> None:
    assert body["rows"] == expected.rows
    assert body["features"] == expected.features
    assert body["schema"] == expected.schema
    assert (body["label_type"], body["classes"]) == (expected.label_type, expected.classes)
    assert body["class_counts"] == expected.class_counts
    database = app.state.database
    assert stored_chunks(database, body["id"]) == chunks_of(expected.X, expected.y_index)
    with database.reads() as session:
        X, y_index = storage.load_arrays(session, session.get(Dataset, body["id"]))
    assert X.tobytes() == expected.X.tobytes()
    np.testing.assert_array_equal(y_index, expected.y_index)


def count(database, table) -> int:
    with database.reads() as session:
        return session.scalar(select(func.count()).select_from(table))


# Through the API ------------------------------------------------------------------------------


def test_a_csv_larger_than_a_chunk_is_stored_in_the_chunks_of_the_format(
    client, app, settings, tmp_path
):
    X, labels = random_table(70_000, 8)  # 4.5 MB of rows: two chunks of 4 MiB
    data = numbers_csv(X, labels)
    response = client.post("/v1/datasets", content=data, headers={"content-type": "text/csv"})
    assert response.status_code == 201, response.text
    expected = in_memory(tmp_path, data, settings)
    assert len(chunks_of(expected.X, expected.y_index)) == 3  # X in 2, y in 1
    assert_stored_as_read(client, app, response.json(), expected)


def test_rows_straddling_small_chunks_are_stored_byte_for_byte(
    client, app, settings, tmp_path, small_chunks
):
    X, labels = random_table(500, 3)
    data = numbers_csv(X, labels)
    files = {"file": ("data.csv", data, "text/csv")}
    response = client.post("/v1/datasets", files=files)
    assert response.status_code == 201, response.text
    assert_stored_as_read(client, app, response.json(), in_memory(tmp_path, data, settings))


def test_a_column_retyped_as_text_by_its_last_row_is_stored_once(
    client, app, settings, tmp_path, small_chunks
):
    # A no-break space: the text rules trim it, Arrow's number parser does not, so the
    # column is read again as text (the stream starts over) and its rows written again.
    X, labels = random_table(2_000, 3)
    data = numbers_csv(X, labels, last_cell="\u00a07")
    response = client.post("/v1/datasets", content=data, headers={"content-type": "text/csv"})
    assert response.status_code == 201, response.text
    expected = in_memory(tmp_path, data, settings)
    assert expected.X[-1, 0] == 7.0
    assert_stored_as_read(client, app, response.json(), expected)


def test_a_bad_cell_in_the_last_row_is_a_422_and_nothing_stays_stored(client, app, small_chunks):
    X, labels = random_table(2_000, 3)
    data = numbers_csv(X, labels, last_cell="inf")
    response = client.post("/v1/datasets", content=data, headers={"content-type": "text/csv"})
    assert response.status_code == 422
    assert response.json()["detail"] == f'column "x0" row 2000: value "inf" is not finite {NOTE}'
    assert count(app.state.database, Dataset) == 0
    assert count(app.state.database, DatasetChunk) == 0


def test_integers_that_turn_to_floats_late_are_reread_as_numbers_and_stored_once(
    client, app, settings, tmp_path, small_chunks, monkeypatch
):
    monkeypatch.setattr(reader, "BLOCK_BYTES", 1024)  # the first block: integers only
    monkeypatch.setattr(reader, "QUOTE_FREE_BLOCK_BYTES", 256)
    lines = [f"{i},{i * 3},{'ab'[i % 2]}" for i in range(1_000)] + ["2.5,7,a"]
    data = ("x,z,y\n" + "\n".join(lines) + "\n").encode()
    response = client.post("/v1/datasets", content=data, headers={"content-type": "text/csv"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert [c["type"] for c in body["schema"]] == ["number", "integer", "string"]
    assert_stored_as_read(client, app, body, in_memory(tmp_path, data, settings))


def test_a_parquet_file_is_stored_batch_by_batch_in_the_chunks_of_the_format(
    client, app, settings, tmp_path, small_chunks, monkeypatch
):
    monkeypatch.setattr(reader, "PARQUET_BATCH_BYTES", 2_000)  # batches of 1024 rows
    X, labels = random_table(5_000, 3)
    table = pa.table(
        {
            "a": X[:, 0].astype(np.float32),
            "b": pa.array((X[:, 1] * 100).astype(np.int64)),
            "c": X[:, 2],
            "kind": pa.array(labels).dictionary_encode(),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=1_500)
    data = sink.getvalue()
    response = client.post(
        "/v1/datasets", content=data, headers={"content-type": "application/vnd.apache.parquet"}
    )
    assert response.status_code == 201, response.text
    expected = in_memory(tmp_path, data, settings, format="parquet")
    assert_stored_as_read(client, app, response.json(), expected)


# The chunk writer -----------------------------------------------------------------------------


def write_dataset_row(session) -> str:
    dataset = Dataset(
        name="chunks",
        label="y",
        features=[],
        schema=[],
        label_type="integer",
        rows=0,
        classes=[],
        class_counts={},
        sha256="0" * 64,
        format="csv",
        size_bytes=0,
    )
    session.add(dataset)
    session.flush()
    return dataset.id


def test_pieces_of_any_size_make_the_chunks_of_one_write(database, small_chunks):
    values = np.arange(3 * 437, dtype=np.float64).reshape(437, 3)
    with database.writes() as session:
        dataset_id = write_dataset_row(session)
        writer = ChunkWriter(session, dataset_id, "X")
        for start, stop in [(0, 1), (1, 42), (42, 43), (43, 300), (300, 437)]:
            writer.write(values[start:stop])
        writer.close()
        storage.store_part(session, dataset_id, "y", np.zeros(0, dtype=np.int32))
        session.commit()
    assert stored_chunks(database, dataset_id) == chunks_of(values, np.zeros(0, np.int32))
    assert [len(data) for part, _, data in stored_chunks(database, dataset_id)] == [
        1000,
        1000,
        1000,
        1000,
        1000,
        1000,
        1000,
        1000,
        1000,
        1000,
        488,
        0,  # an empty part is one empty chunk
    ]


def test_a_reset_writer_starts_its_part_over(database, small_chunks):
    with database.writes() as session:
        dataset_id = write_dataset_row(session)
        writer = ChunkWriter(session, dataset_id, "X")
        writer.write(np.ones((300, 2)))
        writer.reset()
        writer.write(np.full((200, 2), 2.0))
        writer.close()
        session.commit()
    assert stored_chunks(database, dataset_id) == part_chunks("X", np.full((200, 2), 2.0))


def test_sqlite_copies_an_uploads_pages_into_the_file_after_answering(
    client, app, database_url, monkeypatch
):
    if not database_url.startswith("sqlite"):
        pytest.skip("a WAL checkpoint is SQLite's")
    database = app.state.database
    path = database_url.removeprefix("sqlite:///")
    file_bytes = lambda: os.path.getsize(path)  # noqa: E731
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        raw.execute("VACUUM")  # the free pages earlier tests left: the upload's must grow the file
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = file_bytes()
    seen_by_checkpoint = []
    checkpoint = database.checkpoint
    monkeypatch.setattr(
        database, "checkpoint", lambda: (seen_by_checkpoint.append(file_bytes()), checkpoint())
    )
    X, labels = random_table(70_000, 8)  # 4.5 MB of rows: past 1,000 pages of WAL
    response = client.post(
        "/v1/datasets", content=numbers_csv(X, labels), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 201, response.text
    # The commit left the rows in the WAL (the file had not grown when the checkpoint that
    # follows the answer began); that checkpoint copied them in.
    assert len(seen_by_checkpoint) == 1
    assert seen_by_checkpoint[0] < before + X.nbytes // 2
    assert file_bytes() >= before + X.nbytes
