"""Typed dependencies shared by the routers."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.db import Database
from service.settings import Settings


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
    with request.app.state.database.reads() as session:
        yield session


def get_write_session(request: Request) -> Iterator[Session]:
    """A write session per request (routes that change rows)."""
    with request.app.state.database.writes() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]
