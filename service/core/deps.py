"""Typed dependencies shared by the routers."""

import logging
from collections.abc import Iterator
from typing import Annotated, NamedTuple

from fastapi import Depends, Query, Request
from pydantic import WithJsonSchema
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from service.core.bounds import ID_PATTERN
from service.core.database import Database
from service.core.errors import field_problem
from service.core.pagination import DEFAULT_PAGE
from service.core.settings import Settings

log = logging.getLogger(__name__)


# async def: FastAPI calls a plain def dependency in its threadpool, a thread hop per
# request (tens of microseconds under load) for what is an attribute read.
async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    return request.app.state.database


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]


def get_session(request: Request) -> Iterator[Session]:
    """A read session per request (GET routes)."""
    yield from request_session(request.app.state.database.reads)


def get_write_session(request: Request) -> Iterator[Session]:
    """A write session per request (routes that change rows)."""
    yield from request_session(request.app.state.database.writes)


def request_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for one request, closed once the answer is sent, whatever the database does.

    A request-scoped dependency ends after the response: closing the session rolls back its
    open transaction, which fails if the database went away since the route's last query.
    Raised there, the error would reach uvicorn after the answer, and uvicorn drops the
    connection, so the client's next request on it fails unanswered. Nothing is lost by
    letting it go: the server rolled the transaction back when the connection died, and
    SQLAlchemy has discarded the connection.
    """
    session = factory()
    try:
        yield session
    finally:
        try:
            session.close()
        except DBAPIError as error:
            log.warning("closing a request's session: the connection was lost: %s", error.orig)


SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]


# Every list route's `limit` and `cursor`: one rule, one answer. The document states the
# bounds (service.openapi.settings_limits writes this service's BACKPROP_PAGE_LIMIT into them);
# the check below gives the answer, so a range error reads the same on every list route.
LIMIT_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 100, "default": DEFAULT_PAGE}
LimitQuery = Annotated[
    int | None,
    WithJsonSchema(LIMIT_SCHEMA),
    Query(description="Items per page: 1 to BACKPROP_PAGE_LIMIT"),
]
CursorQuery = Annotated[
    str | None,
    WithJsonSchema({"type": "string"}),
    Query(description="`next_cursor` of the previous page; empty or absent: the first page"),
]


# A row's id in a path: what service.core.tables.new_id makes. The pattern is documented, not
# enforced: any other id names no row, and the answer stays the 404 it was.
IdPath = Annotated[str, WithJsonSchema({"type": "string", "pattern": ID_PATTERN})]


class Page(NamedTuple):
    """The page a list route was asked for."""

    limit: int
    cursor: str | None  # None: the first page


async def page_params(
    settings: SettingsDep, limit: LimitQuery = None, cursor: CursorQuery = None
) -> Page:
    """``limit`` checked against BACKPROP_PAGE_LIMIT (422 naming query.limit); "" is no cursor."""
    if limit is None:
        limit = min(DEFAULT_PAGE, settings.page_limit)
    if not 1 <= limit <= settings.page_limit:
        message = f"must be between 1 and {settings.page_limit}, got {limit}"
        raise field_problem("query.limit", message)
    return Page(limit, cursor or None)


PageDep = Annotated[Page, Depends(page_params)]

__all__ = ["DatabaseDep", "IdPath", "PageDep", "SessionDep", "SettingsDep", "WriteSessionDep"]
