"""Databases for the tests: SQLite always, PostgreSQL when BACKPROP_TEST_POSTGRES_URL is set.

Each test run creates its own databases (a SQLite file in a temporary folder, a
PostgreSQL database with a unique name), migrates them with Alembic, empties
every table after each test, and drops them at the end: runs never see each
other's rows.
"""

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.core.migrate import upgrade
from service.core.tables import Base

POSTGRES_URL = os.environ.get("BACKPROP_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"]


def pytest_report_header() -> str:
    """Which BLAS kernel ran: the engine's exact results must not depend on it."""
    import numpy  # noqa: F401  (loads its OpenBLAS, so threadpool_info sees it)
    from threadpoolctl import threadpool_info

    blas = [f"{i['internal_api']} {i['version']} {i['architecture']}" for i in threadpool_info()]
    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    return f"blas: {', '.join(blas) or 'none loaded'} (OPENBLAS_CORETYPE={coretype})"


def create_postgres_database(prefix: str = "backprop_test") -> str:
    """A new, empty PostgreSQL database; returns its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def migrated_urls(tmp_path_factory) -> Iterator[dict[str, str]]:
    """One migrated database per backend for the whole run."""
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('db') / 'backprop.db'}"}
    if POSTGRES_URL:
        urls["postgresql"] = create_postgres_database()
    for url in urls.values():
        upgrade(url)
    yield urls
    if "postgresql" in urls:
        drop_postgres_database(urls["postgresql"])


def empty_all_tables(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        if url.startswith("postgresql"):
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names} CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, migrated_urls) -> Iterator[str]:
    """A migrated, empty database on each backend (PostgreSQL skipped when not configured)."""
    if request.param not in migrated_urls:
        pytest.skip("PostgreSQL tests need BACKPROP_TEST_POSTGRES_URL")
    url = migrated_urls[request.param]
    yield url
    empty_all_tables(url)
