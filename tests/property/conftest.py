"""The service fixtures (tests/service/conftest.py) for the property tests: settings, app,
client (in process) and database, on each backend of the `database_url` fixture."""

from tests.service.conftest import app, client, database, settings

__all__ = ["app", "client", "database", "settings"]
