"""Typed dependencies shared by the routers."""

from typing import Annotated

from fastapi import Depends, Request

from service.db import Database, SessionDep, WriteSessionDep
from service.settings import Settings


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_database(request: Request) -> Database:
    return request.app.state.database


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]

__all__ = ["DatabaseDep", "SessionDep", "SettingsDep", "WriteSessionDep"]
