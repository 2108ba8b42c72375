"""The app on a real database, and a client that talks to it in process."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.app import create_app
from service.core.database import Database
from service.core.settings import Settings


@pytest.fixture
def settings(database_url) -> Settings:
    """Settings for tests: fast leases and polls so queue behaviour shows in seconds."""
    return Settings(
        database_url=database_url,
        workers=1,
        lease_seconds=3.0,
        heartbeat_seconds=0.5,
        poll_seconds=0.05,
        sweep_seconds=0.5,
        checkpoint_seconds=0.5,
        flush_seconds=0.1,
    )


@pytest.fixture
def app(settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def database(database_url) -> Iterator[Database]:
    """The test database, for writing rows directly as the API and workers would."""
    db = Database(database_url)
    yield db
    db.dispose()
