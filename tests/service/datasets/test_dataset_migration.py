"""Migration 0005 on stored datasets: their schemas gain the typed entries, and the same
bytes may then be stored once per reading (label, categorical=, ignore=)."""

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from service.core.migrate import alembic_config
from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database

OLD_SCHEMA = [
    {"name": "x", "type": "number", "role": "feature"},
    {"name": "flag", "type": "boolean", "role": "feature"},
    {"name": "y", "type": "string", "role": "label"},
]
UNCOUNTED = dict.fromkeys(("distinct", "levels", "top_levels", "min", "max", "mean", "warning"))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> Iterator[str]:
    """An empty database of its own (these tests go down and up the revisions)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migration.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need BACKPROP_TEST_POSTGRES_URL")
    created = create_postgres_database(prefix="backprop_dataset_migration")
    yield created
    drop_postgres_database(created)


def insert_dataset(connection: sa.Connection, dataset_id: str, **columns: object) -> None:
    row = {
        "id": dataset_id,
        "name": "old",
        "label": "y",
        "features": ["x", "flag"],
        "schema": OLD_SCHEMA,
        "label_type": "string",
        "rows": 2,
        "classes": ["a", "b"],
        "class_counts": {"a": 1, "b": 1},
        "sha256": "0" * 64,
        "format": "csv",
        "size_bytes": 20,
    }
    json = ("features", "schema", "classes", "class_counts")
    names = [*row, *columns, "created_at"]
    table = sa.table("datasets", *(sa.column(n, sa.JSON if n in json else None) for n in names))
    connection.execute(table.insert().values(**(row | columns), created_at=sa.func.now()))


def schema_of(connection: sa.Connection, dataset_id: str) -> list:
    datasets = sa.table("datasets", sa.column("id"), sa.column("schema", sa.JSON))
    return connection.scalar(sa.select(datasets.c.schema).where(datasets.c.id == dataset_id))


def test_stored_schemas_gain_kinds_and_go_back_to_their_three_fields(url):
    config = alembic_config(url)
    command.upgrade(config, "0004")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        insert_dataset(connection, "a" * 32)
    command.upgrade(config, "0005")
    with engine.connect() as connection:
        assert schema_of(connection, "a" * 32) == [
            {"name": "x", "role": "feature", "type": "number", "kind": "numeric", "missing": 0}
            | UNCOUNTED,
            {"name": "flag", "role": "feature", "type": "boolean", "kind": "categorical"}
            | {"missing": 0}
            | UNCOUNTED
            | {"levels": ["false", "true"]},
            {"name": "y", "role": "label", "type": "string", "kind": "categorical", "missing": 0}
            | UNCOUNTED,
        ]
        # Another reading of the same bytes is another row now.
    with engine.begin() as connection:
        insert_dataset(connection, "b" * 32, overrides="f" * 64)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DELETE FROM datasets WHERE id = '{'b' * 32}'"))
    command.downgrade(config, "0004")
    with engine.connect() as connection:
        assert schema_of(connection, "a" * 32) == OLD_SCHEMA
    engine.dispose()
