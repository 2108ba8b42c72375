"""Keys of two projects made in the test database before the app starts, and its client."""

from collections.abc import Iterator
from typing import NamedTuple

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.core.api_keys import create_key
from service.core.roles import Role


class Made(NamedTuple):
    key: str
    key_id: str
    project: str


class Keys(NamedTuple):
    admin: Made  # team-a
    trainer: Made  # team-a
    reader: Made  # team-a
    other_admin: Made  # team-b


def make_key(database, project: str, role: Role, name: str | None = None) -> Made:
    with database.writes() as session:
        key, row = create_key(session, project=project, role=role, name=name)
        session.commit()
    return Made(key, row.key_id, project)


def bearer(made: Made) -> dict[str, str]:
    return {"Authorization": f"Bearer {made.key}"}


@pytest.fixture
def keys(database) -> Keys:
    return Keys(
        admin=make_key(database, "team-a", Role.admin, "a admin"),
        trainer=make_key(database, "team-a", Role.trainer, "a trainer"),
        reader=make_key(database, "team-a", Role.reader, "a reader"),
        other_admin=make_key(database, "team-b", Role.admin, "b admin"),
    )


@pytest.fixture
def api(keys, settings) -> Iterator[TestClient]:
    """The app on the test database, made once the keys exist (so it needs one at once)."""
    with TestClient(create_app(settings)) as client:
        yield client
