"""Loading a stored dataset's rows in the training dtype, and a worker training on them in place."""

import threading
import tracemalloc

import numpy as np
import pytest
from sqlalchemy import delete, func, select

from engine import ModelSpec, TrainingSpec, fit, load
from service.core.settings import Settings
from service.core.tables import Dataset, DatasetChunk, JobHistory, Model
from service.datasets.rows import load_rows, training_dtype
from service.datasets.storage import CHUNK_BYTES, labels_of, load_arrays
from service.queue.worker import run_worker
from tests.service.factories import add_dataset, add_job, get_job


def read(database, dataset_id, loader, *args):
    with database.reads() as session:
        dataset = session.get(Dataset, dataset_id)
        return loader(session, dataset, *args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_equal_the_stored_float64_rows_cast_to_the_training_dtype(database, dtype):
    # 3000 x 700 float64 is 16.8 MB: five chunks, rows split across chunk boundaries.
    dataset_id = add_dataset(database, rows=3000, features=700, classes=("a", "b", "c"))
    X, y_index = read(database, dataset_id, load_rows, np.dtype(dtype))
    stored_X, stored_y = read(database, dataset_id, load_arrays)

    assert X.dtype == dtype
    assert X.flags.c_contiguous
    assert X.flags.writeable
    np.testing.assert_array_equal(X, stored_X.astype(dtype))
    assert y_index.dtype == stored_y.dtype
    np.testing.assert_array_equal(y_index, stored_y)


def test_loading_float32_rows_holds_one_float32_matrix_and_a_chunk(database):
    dataset_id = add_dataset(database, rows=20_000, features=200)  # 32 MB stored as float64
    with database.reads() as session:
        dataset = session.get(Dataset, dataset_id)
        tracemalloc.start()
        try:
            X, y_index = load_rows(session, dataset, np.dtype(np.float32))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # The float64 matrix alone would be 2 X.nbytes; the driver may hold a second chunk.
    assert peak < X.nbytes + y_index.nbytes + 2 * CHUNK_BYTES + (1 << 20), (
        f"{peak / X.nbytes:.2f} X"
    )


def test_a_dataset_missing_a_chunk_is_refused_with_the_byte_counts(database):
    dataset_id = add_dataset(database, rows=2000, features=600)  # 9.6 MB: three X chunks
    with database.writes() as session, session.begin():
        last = session.scalar(
            select(func.max(DatasetChunk.index)).where(
                DatasetChunk.dataset_id == dataset_id, DatasetChunk.part == "X"
            )
        )
        session.execute(
            delete(DatasetChunk).where(
                DatasetChunk.dataset_id == dataset_id,
                DatasetChunk.part == "X",
                DatasetChunk.index == last,
            )
        )
    with pytest.raises(ValueError, match=rf"part X: {2 * CHUNK_BYTES} of 9600000 bytes stored"):
        read(database, dataset_id, load_rows, np.dtype(np.float32))


@pytest.mark.parametrize(
    ("spec", "dtype"),
    [
        ({"dtype": "float32"}, np.float32),
        ({"dtype": "float64"}, np.float64),
        ({}, np.float64),  # a spec stored before the field existed: the engine's default
        ({"dtype": "float16"}, np.float64),  # refused by the engine, not by the loader
    ],
)
def test_training_dtype_is_the_specs_or_the_engines_default(spec, dtype):
    assert training_dtype(spec) == dtype


def test_a_worker_trains_float32_rows_in_place_exactly_as_fit_on_the_stored_arrays(
    database, database_url
):
    dataset_id = add_dataset(database, rows=3000, features=40, classes=(0, 1, 2))
    model = ModelSpec(type="two_layer_network", hidden_units=8)
    training = TrainingSpec(batch_size=200, epochs=5, dtype="float32", early_stopping=None)
    job_id = add_job(database, dataset_id, model=model, training=training)
    with database.reads() as session:
        dataset = session.get(Dataset, dataset_id)
        X, y_index = load_arrays(session, dataset)  # float64, never written by fit below
        expected = fit(
            X, labels_of(dataset, y_index), model, training, feature_names=dataset.features
        )

    stop_event = threading.Event()
    settings = Settings(database_url=database_url, poll_seconds=0.05, flush_seconds=0.1)
    worker = threading.Thread(
        target=run_worker, args=(settings,), kwargs={"worker_id": "w", "stop_event": stop_event}
    )
    worker.start()
    try:
        for _ in range(400):
            if get_job(database, job_id).status in {"succeeded", "failed"}:
                break
            stop_event.wait(0.05)
    finally:
        stop_event.set()
        worker.join(timeout=10)

    job = get_job(database, job_id)
    assert (job.status, job.error) == ("succeeded", None)
    with database.reads() as session:
        artifact = session.scalar(select(Model.artifact).where(Model.job_id == job_id))
        losses = session.execute(
            select(JobHistory.train_loss, JobHistory.val_loss)
            .where(JobHistory.job_id == job_id)
            .order_by(JobHistory.epoch)
        ).all()
    trained = load(artifact).model.parameters.theta
    assert trained.dtype == np.float32
    np.testing.assert_array_equal(trained, expected.classifier.model.parameters.theta)
    assert [tuple(row) for row in losses] == [(m.train_loss, m.val_loss) for m in expected.history]
