"""The service fixtures (tests/service/conftest.py) for the regression tests here."""

from tests.service.conftest import app, client, database, settings

__all__ = ["app", "client", "database", "settings"]
