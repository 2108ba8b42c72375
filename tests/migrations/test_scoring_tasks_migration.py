"""Revision 0009: the scoring tables come and go, and PostgreSQL keeps result blocks
uncompressed as it keeps dataset chunks."""

from alembic import command
from sqlalchemy import create_engine, text

from tests.migrations.test_migrations import config, empty_database_url, table_names  # noqa: F401


def block_storage(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                text(
                    "SELECT attstorage FROM pg_attribute "
                    "WHERE attrelid = 'scoring_blocks'::regclass AND attname = 'data'"
                )
            ).scalar_one()
    finally:
        engine.dispose()


def test_0009_adds_the_scoring_tables_and_its_downgrade_drops_them(config, empty_database_url):  # noqa: F811
    command.upgrade(config, "0007")
    assert not {"scoring_tasks", "scoring_blocks"} & table_names(empty_database_url)
    command.upgrade(config, "0009")
    assert {"scoring_tasks", "scoring_blocks"} <= table_names(empty_database_url)
    if empty_database_url.startswith("postgresql"):
        assert block_storage(empty_database_url) == "e"  # EXTERNAL: out of line, as stored
    command.downgrade(config, "0007")
    assert not {"scoring_tasks", "scoring_blocks"} & table_names(empty_database_url)
