"""Rows for service tests, written with the ORM the way the API and the workers write them."""

import uuid
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
from sqlalchemy import insert, select, update

import engine
from engine import ModelSpec, TrainingSpec
from service.core.database import Database
from service.core.states import QUEUED
from service.core.tables import Dataset, Job, JobHistory, utcnow
from service.datasets.reader_summary import NumberSummary, label_entry
from service.datasets.storage import store_arrays
from service.queue.notify import notify_job_queued
from service.queue.results import model_row


def numeric_entry(name: str, values: np.ndarray) -> dict[str, Any]:
    """The schema entry the reader would give a column of these (m,) float64 values."""
    summary = NumberSummary(max_distinct=10_000, integer=False)
    summary.add(values, pa.array(values))
    return {"name": name, "role": "feature", "type": "number", **summary.entry(len(values))}


def add_dataset(
    database: Database,
    *,
    rows: int = 60,
    features: int = 3,
    classes: tuple[Any, ...] = (0, 1),
    seed: int = 0,
) -> str:
    """A stored dataset whose classes take turns and are learnable from x0; returns its id."""
    rng = np.random.default_rng(seed + rows)
    y_index = (np.arange(rows) % len(classes)).astype(np.int32)
    X = rng.normal(size=(rows, features))
    X[:, 0] += 2.0 * y_index  # each class sits further along x0
    names = [f"x{i}" for i in range(features)]
    label_type = "integer" if all(isinstance(c, int) for c in classes) else "string"
    counts = np.bincount(y_index, minlength=len(classes))
    dataset = Dataset(
        name=f"test-{seed}",
        label="y",
        features=names,
        schema=[numeric_entry(n, X[:, j]) for j, n in enumerate(names)]
        + [label_entry("y", label_type, list(classes), counts)],
        label_type=label_type,
        rows=rows,
        classes=list(classes),
        class_counts={str(c): int(n) for c, n in zip(classes, counts, strict=True)},
        sha256=uuid.uuid4().hex * 2,
        format="csv",
        size_bytes=X.nbytes,
    )
    with database.writes() as session, session.begin():
        session.add(dataset)
        session.flush()
        store_arrays(session, dataset.id, X, y_index)
    return dataset.id


def add_job(
    database: Database,
    dataset_id: str | None,
    *,
    model: ModelSpec | None = None,
    training: TrainingSpec | None = None,
    model_type: str | None = None,
    epochs: int | None = None,
    status: str = QUEUED,
    created_at: datetime | None = None,
    age_seconds: float = 0.0,
    max_attempts: int = 3,
    **values: Any,
) -> str:
    """A job row as POST /v1/jobs records it (then in ``status``, as a worker would leave it)."""
    model = model or ModelSpec(type=model_type or ModelSpec().type)
    training = training or TrainingSpec(epochs=epochs or 20)
    job = Job(
        dataset_id=dataset_id,
        status=status,
        model_type=model.type,
        model_spec=asdict(model),
        training_spec=training.to_dict(),
        epochs=training.epochs,
        attempt=0 if status == QUEUED else 1,
        max_attempts=max_attempts,
        created_at=created_at or utcnow() - timedelta(seconds=age_seconds),
        **values,
    )
    with database.writes() as session, session.begin():
        session.add(job)
        notify_job_queued(session)  # delivered at commit, as POST /v1/jobs does
    return job.id


def add_model(database: Database) -> str:
    """A succeeded job on a stored dataset (features x0, x1; label y) and its fitted model,
    as the worker stores them; returns the model's id."""
    dataset_id = add_dataset(database, rows=20, features=2)
    job_id = add_job(database, dataset_id, status="succeeded")
    X, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 2
    result = engine.fit(X, y, ModelSpec(), TrainingSpec(epochs=2), feature_names=["x0", "x1"])
    with database.writes() as session, session.begin():
        model = model_row(session.get(Job, job_id), result)
        session.add(model)
    return model.id


def get_job(database: Database, job_id: str) -> Job:
    with database.reads() as session:
        return session.get(Job, job_id)


def set_job(database: Database, job_id: str, **values: Any) -> None:
    with database.writes() as session, session.begin():
        session.execute(update(Job).where(Job.id == job_id).values(**values))


def history_row(epoch: int, **values: Any) -> dict[str, Any]:
    """A job_history row with smoothly falling losses (``values`` override)."""
    row = {
        "epoch": epoch,
        "attempt": 1,
        "train_loss": 0.7 / epoch,
        "val_loss": 0.8 / epoch,
        "train_accuracy": 0.9,
        "val_accuracy": 0.85,
        "grad_norm": 0.1 / epoch,
        "seconds": 0.01,
    }
    return {**row, **values}


def add_history(
    database: Database, job_id: str, rows: list[dict[str, Any]], **job_values: Any
) -> None:
    """Append history rows and update the job's progress in one transaction, like a worker."""
    with database.writes() as session, session.begin():
        if rows:
            session.execute(insert(JobHistory), [{"job_id": job_id, **row} for row in rows])
        if job_values:
            session.execute(update(Job).where(Job.id == job_id).values(**job_values))


def history_epochs(database: Database, job_id: str) -> list[tuple[int, int]]:
    """(epoch, attempt) of each history row, in epoch order."""
    with database.reads() as session:
        rows = session.execute(
            select(JobHistory.epoch, JobHistory.attempt)
            .where(JobHistory.job_id == job_id)
            .order_by(JobHistory.epoch)
        )
        return [tuple(row) for row in rows]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    return body
