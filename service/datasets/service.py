"""Datasets: create from an upload, read, list and delete (keyword-only service functions).

These run in the threadpool with a synchronous session; the routers hand them
a read session (GET) or a write session (POST, DELETE).
"""

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.audit import record
from service.core.database import Database, defer_checkpoint
from service.core.errors import Conflict, PayloadTooLarge, Unprocessable, not_found
from service.core.pagination import page
from service.core.quotas import check_stored_bytes
from service.core.settings import Settings
from service.core.states import LIVE_STATES
from service.core.tables import Dataset, Job, could_be_id
from service.core.tenancy import request_project
from service.datasets import reader, storage
from service.datasets.readahead import DiscardSink
from service.datasets.reader import StreamedDataset
from service.datasets.uploads import Upload

TEXT_MAX = 200  # the length of the datasets.name and datasets.label columns


def create_dataset(
    *,
    session: Session,
    upload: Upload,
    name: str | None,
    label: str | None,
    settings: Settings,
    categorical: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> tuple[Dataset, bool]:
    """Read and store ``upload``; (the dataset, True), or (the existing one, False).

    The same bytes with the same label column, read with the same ``categorical`` and
    ``ignore`` names, are the same dataset, so an upload that repeats one returns it
    instead of storing a copy (once the file is read: a file that would be refused is
    refused, stored or not).

    service.datasets.reader streams the rows into the database as it reads them. The
    transaction starts before the file is read, so on SQLite the write lock is held
    while it reads (about a second per 200 MB): the price of never holding the whole
    matrix. If the file is refused, whatever was written is rolled back.
    """
    name = name or upload.default_name
    overrides = {"categorical": categorical, "ignore": ignore}
    key = overrides_key(**overrides)
    with reader.open_dataset(
        upload.path, format=upload.format, label=label, settings=settings, **overrides
    ) as stream:
        if not (_fits(name) and stream.usable and _fits(stream.label)):
            # Refusals of the file come first: read it, then say what is wrong with the names.
            stream.read(DiscardSink())
            _storable(name, field="name", what="name")
            _storable(stream.label, field="label", what="the label column's name")
        existing = _find(session, sha256=upload.sha256, label=stream.label, overrides=key)
        if existing is not None:
            session.commit()  # nothing to write: end the transaction (and SQLite's lock)
            stream.read(DiscardSink())
            return existing, False
        # The project's stored bytes quota: refused before a row is read (a repeat, above,
        # stores nothing and passes).
        project = request_project()
        quota = {"project": project, "settings": settings, "adding": upload.size_bytes}
        check_stored_bytes(session, **quota)
        dataset = _new_dataset(upload, name=name, label=stream.label, overrides=key)
        try:
            session.add(dataset)
            session.flush()
        except IntegrityError:
            # Another request stored the same upload between our look-up and insert
            # (PostgreSQL; SQLite's write lock serialises them): answer with its dataset.
            session.rollback()
            stream.read(DiscardSink())
            existing = _find(session, sha256=upload.sha256, label=stream.label, overrides=key)
            if existing is None:
                raise
            session.commit()
            return existing, False
        rows = storage.ChunkWriter(session, dataset.id, "X")
        try:
            streamed = stream.read(rows)
        except BaseException:
            session.rollback()  # the dataset row and the rows written so far
            raise
        rows.close()
        storage.store_part(session, dataset.id, "y", streamed.y_index)
        _describe(dataset, streamed)
        try:  # again, locked till the commit: a concurrent upload may have stored meanwhile
            check_stored_bytes(session, **quota, besides=dataset.id, lock=True)
        except PayloadTooLarge:
            session.rollback()
            raise
        record(session, "dataset.create", dataset.id, {"name": dataset.name, "rows": dataset.rows})
        defer_checkpoint(session)  # the matrix's pages are copied after the answer, not before
        session.commit()
    return dataset, True


# A dataset row inserted before its file is read, so that its chunks may follow at once;
# the columns are filled in before the commit, which makes it visible.
_PENDING: dict[str, Any] = {
    "features": [],
    "schema": [],
    "label_type": "",
    "rows": 0,
    "classes": [],
    "class_counts": {},
}


def overrides_key(*, categorical: Sequence[str], ignore: Sequence[str]) -> str:
    """What tells apart readings of the same bytes: SHA-256 of the sorted names, "" for none."""
    if not categorical and not ignore:
        return ""
    names = {"categorical": sorted(set(categorical)), "ignore": sorted(set(ignore))}
    return hashlib.sha256(json.dumps(names, ensure_ascii=False).encode()).hexdigest()


def _new_dataset(upload: Upload, *, name: str, label: str, overrides: str) -> Dataset:
    """The dataset row of ``upload``, its columns from the file still to be described."""
    return Dataset(
        name=name,
        label=label,
        overrides=overrides,
        sha256=upload.sha256,
        format=upload.format,
        size_bytes=upload.size_bytes,
        **_PENDING,
    )


def _describe(dataset: Dataset, streamed: StreamedDataset) -> None:
    """Copy what the file turned out to hold onto the dataset row."""
    dataset.features = streamed.features
    dataset.schema = streamed.schema
    dataset.label_type = streamed.label_type
    dataset.rows = streamed.rows
    dataset.classes = streamed.classes
    dataset.class_counts = streamed.class_counts


def get_dataset(*, session: Session, dataset_id: str) -> Dataset:
    """The dataset ``dataset_id``, or NotFound (404)."""
    # An id no row can have is not looked up (PostgreSQL refuses NUL in text: a 500).
    dataset = session.get(Dataset, dataset_id) if could_be_id(dataset_id) else None
    if dataset is None:
        raise not_found("dataset", dataset_id)
    return dataset


def list_datasets(
    *, session: Session, limit: int, cursor: str | None = None
) -> tuple[list[Dataset], str | None]:
    """One page of datasets, newest first, and the cursor of the next page (None at the end)."""
    return page(session, select(Dataset), Dataset, limit, cursor)


def delete_dataset(*, session: Session, dataset_id: str) -> None:
    """Delete a dataset and its stored arrays; Conflict (409) while a live job uses it.

    Finished jobs and models keep their rows, with dataset_id set to NULL by the
    foreign keys (ON DELETE SET NULL).
    """
    # FOR UPDATE (PostgreSQL) makes a job insert that names this dataset wait for us
    # (its foreign key check takes a KEY SHARE lock) and then fail, so no job can
    # start on a dataset that is being deleted. SQLite's write lock does the same.
    dataset = None
    if could_be_id(dataset_id):
        dataset = session.scalar(select(Dataset).where(Dataset.id == dataset_id).with_for_update())
    if dataset is None:
        raise not_found("dataset", dataset_id)
    live = list(
        session.scalars(
            select(Job.id)
            .where(Job.dataset_id == dataset_id, Job.status.in_(LIVE_STATES))
            .order_by(Job.created_at)
            .limit(5)
        )
    )
    if live:
        listed = ", ".join(live)
        raise Conflict(
            f"dataset {dataset_id} is used by a queued or running job ({listed}); "
            "cancel it or wait for it to finish, then delete the dataset",
            jobs=live,
        )
    session.execute(delete(Dataset).where(Dataset.id == dataset_id))
    record(session, "dataset.delete", dataset_id)
    session.commit()


def _fits(text: str) -> bool:
    """Whether _storable would take ``text``."""
    return len(text) <= TEXT_MAX and "\x00" not in text


def _storable(text: str, *, field: str, what: str) -> str:
    """``text`` if the name and label columns can hold it (PostgreSQL refuses NUL in text)."""
    if len(text) > TEXT_MAX:
        raise Unprocessable(
            f"{what} is {len(text)} characters long; at most {TEXT_MAX} are allowed", field=field
        )
    if "\x00" in text:
        raise Unprocessable(f"{what} contains a NUL character", field=field)
    return text


def _find(session: Session, *, sha256: str, label: str, overrides: str) -> Dataset | None:
    return session.scalar(
        select(Dataset).where(
            Dataset.sha256 == sha256, Dataset.label == label, Dataset.overrides == overrides
        )
    )


def check_room_for_uploads(*, database: Database, settings: Settings) -> None:
    """413 when the request's project is already at its stored bytes quota: its upload
    would pass it whatever its size, so it is refused before a byte of it is read."""
    with database.reads() as session:
        check_stored_bytes(session, project=request_project(), settings=settings, adding=0)
