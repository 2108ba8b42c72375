"""Typed dependencies shared by the routers."""

from typing import Annotated

from fastapi import Depends, Request

from service.db import Database, SessionDep, WriteSessionDep
from service.settings import Settings


# async def: FastAPI calls a plain def dependency in its threadpool, a thread hop per
# request (tens of microseconds under load) for what is an attribute read.
async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    return request.app.state.database


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]

__all__ = ["DatabaseDep", "SessionDep", "SettingsDep", "WriteSessionDep"]
