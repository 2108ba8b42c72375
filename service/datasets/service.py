"""Datasets: create from an upload, read, list and delete (keyword-only service functions).

These run in the threadpool with a synchronous session; the routers hand them
a read session (GET) or a write session (POST, DELETE).
"""

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.errors import Conflict, Unprocessable, not_found
from service.core.pagination import page
from service.core.settings import Settings
from service.core.states import LIVE_STATES
from service.core.tables import Dataset, Job, could_be_id
from service.datasets import fast_parsing, storage
from service.datasets.fast_parsing import StreamedDataset
from service.datasets.parsing import ParsedDataset, parse_dataset
from service.datasets.uploads import Upload

TEXT_MAX = 200  # the length of the datasets.name and datasets.label columns


def create_dataset(
    *, session: Session, upload: Upload, name: str | None, label: str | None, settings: Settings
) -> tuple[Dataset, bool]:
    """Parse and store ``upload``; (the dataset, True), or (the existing one, False).

    The same bytes with the same label column are the same dataset, so an upload
    that repeats one returns it instead of storing a copy.

    The fast path (service.datasets.fast_parsing) streams the rows into the database as it
    reads them. Its transaction starts before the file is read, so on SQLite the
    write lock is held while it parses (about a second per 200 MB): the price of
    never holding the whole matrix. If it steps aside, whatever it wrote is rolled
    back and the file is parsed whole by service.datasets.parsing, which decides and stores
    as before (taking the write lock only to store).
    """
    name = name or upload.default_name
    streamed = _create_streaming(
        session=session, upload=upload, name=name, label=label, settings=settings
    )
    if streamed is not None:
        return streamed
    session.rollback()  # the fast path's rows, if it wrote any
    return _create_parsed(session=session, upload=upload, name=name, label=label, settings=settings)


def _create_streaming(
    *, session: Session, upload: Upload, name: str, label: str | None, settings: Settings
) -> tuple[Dataset, bool] | None:
    """create_dataset's fast path: the result, or None if the file is for the parser."""
    stream = fast_parsing.open_dataset(
        upload.path, format=upload.format, label=label, settings=settings
    )
    if stream is None:
        return None
    with stream:
        if not (_fits(name) and _fits(stream.label)):
            return (
                None  # service.datasets.parsing's path refuses them, after parsing as it always has
            )
        existing = _find(session, sha256=upload.sha256, label=stream.label)
        if existing is not None:
            session.commit()  # nothing to write: end the transaction (and SQLite's lock)
            checked = stream.read(fast_parsing.DiscardSink())
            return None if checked is None else (existing, False)
        dataset = _new_dataset(upload, name=name, label=stream.label)
        try:
            session.add(dataset)
            session.flush()
        except IntegrityError:
            return None  # stored by another request meanwhile: the parser's path finds it
        rows = storage.ChunkWriter(session, dataset.id, "X")
        streamed = stream.read(rows)
        if streamed is None:
            return None
        rows.close()
        storage.store_part(session, dataset.id, "y", streamed.y_index)
        _describe(dataset, streamed)
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


def _new_dataset(upload: Upload, *, name: str, label: str) -> Dataset:
    """The dataset row of ``upload``, its columns from the file still to be described."""
    return Dataset(
        name=name,
        label=label,
        sha256=upload.sha256,
        format=upload.format,
        size_bytes=upload.size_bytes,
        **_PENDING,
    )


def _describe(dataset: Dataset, parsed: ParsedDataset | StreamedDataset) -> None:
    """Copy what the file turned out to hold onto the dataset row."""
    dataset.features = parsed.features
    dataset.schema = parsed.schema
    dataset.label_type = parsed.label_type
    dataset.rows = parsed.rows
    dataset.classes = parsed.classes
    dataset.class_counts = parsed.class_counts


def _create_parsed(
    *, session: Session, upload: Upload, name: str, label: str | None, settings: Settings
) -> tuple[Dataset, bool]:
    """create_dataset by service.datasets.parsing: the whole file parsed before the first statement,
    so on SQLite the write lock is taken only to store."""
    parsed = parse_dataset(upload.path, format=upload.format, label=label, settings=settings)
    name = _storable(name, field="name", what="name")
    _storable(parsed.label, field="label", what="the label column's name")
    existing = _find(session, sha256=upload.sha256, label=parsed.label)
    if existing is not None:
        session.commit()  # ends the transaction (and SQLite's write lock) at once
        return existing, False
    dataset = _new_dataset(upload, name=name, label=parsed.label)
    _describe(dataset, parsed)
    try:
        session.add(dataset)
        session.flush()
        storage.store_arrays(session, dataset.id, parsed.X, parsed.y_index)
        session.commit()
    except IntegrityError:
        # Another request stored the same upload between our look-up and insert
        # (PostgreSQL; SQLite's write lock serialises them): answer with its dataset.
        session.rollback()
        existing = _find(session, sha256=upload.sha256, label=parsed.label)
        if existing is None:
            raise
        session.commit()
        return existing, False
    return dataset, True


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


def _find(session: Session, *, sha256: str, label: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.sha256 == sha256, Dataset.label == label))
