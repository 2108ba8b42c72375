"""Schemas of /v1/registered-models: registered models, their versions and aliases."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from service.core.bounds import ID_PATTERN, JsonInt

# A registered model's name and an alias: letters, digits and -_. , starting with a letter or
# digit (so "." and ".." never reach a URL path), at most 100 characters.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
NAME_MAX = 100
DESCRIPTION_MAX = 2000

Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        max_length=NAME_MAX,
        description="1-100 letters, digits, `-`, `_` or `.`, starting with a letter or digit",
        examples=["churn"],
    ),
]
Version = Annotated[JsonInt, Field(ge=1, le=2**31 - 1, description="a version number (1, 2 ...)")]

EXAMPLE_NAME = "churn"
EXAMPLE_MODEL_ID = "5b0c3c1e9d0a4f5e8a7b6c5d4e3f2a1b"
EXAMPLE_KEY_ID = "3f2a1b9c8d7e"
EXAMPLE_TIME = "2026-12-06T12:00:00Z"


class RegisteredModelCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": EXAMPLE_NAME, "description": "Who leaves"}]},
    )

    name: Name
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class ModelVersionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"model_id": EXAMPLE_MODEL_ID}]}
    )

    # Not checked against the id pattern here: an id that names no model is one answer,
    # "model_id: model '...' does not exist" (422), whatever it looks like.
    model_id: str = Field(
        max_length=1000,
        description="a fitted model (GET /v1/models)",
        json_schema_extra={"pattern": ID_PATTERN},
    )


class AliasSet(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 2}]})

    version: Version


class ModelVersionPublic(BaseModel):
    name: str
    version: int
    model_id: str
    aliases: list[str] = Field(description="the aliases that point at this version")
    created_at: datetime
    created_by: str | None = Field(description="id of the API key that registered it")


class AliasMovePublic(BaseModel):
    from_version: int | None = Field(description="null: the alias was created")
    to_version: int | None = Field(description="null: the alias was deleted")
    moved_at: datetime
    moved_by: str | None = Field(description="id of the API key that moved it (null: no keys)")


class AliasPublic(BaseModel):
    name: str
    alias: str
    version: int
    model_id: str
    updated_at: datetime
    updated_by: str | None
    moves: list[AliasMovePublic] = Field(description="every change of the alias, newest first")


class RegisteredModelPublic(BaseModel):
    id: str
    name: str
    description: str | None
    latest_version: int | None = Field(description="the highest version registered and kept")
    aliases: dict[str, int] = Field(description="alias -> version")
    versions: list[ModelVersionPublic] | None = Field(
        default=None, description="every version, newest first (null in listings)"
    )
    created_at: datetime
    created_by: str | None


class RegisteredModelsPublic(BaseModel):
    data: list[RegisteredModelPublic]
    next_cursor: str | None


EXAMPLE_VERSION = {
    "name": EXAMPLE_NAME,
    "version": 2,
    "model_id": EXAMPLE_MODEL_ID,
    "aliases": ["production"],
    "created_at": EXAMPLE_TIME,
    "created_by": EXAMPLE_KEY_ID,
}
EXAMPLE_REGISTERED_MODEL = {
    "id": "9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f",
    "name": EXAMPLE_NAME,
    "description": "Who leaves",
    "latest_version": 2,
    "aliases": {"production": 2},
    "versions": [EXAMPLE_VERSION],
    "created_at": EXAMPLE_TIME,
    "created_by": EXAMPLE_KEY_ID,
}
EXAMPLE_ALIAS = {
    "name": EXAMPLE_NAME,
    "alias": "production",
    "version": 2,
    "model_id": EXAMPLE_MODEL_ID,
    "updated_at": EXAMPLE_TIME,
    "updated_by": EXAMPLE_KEY_ID,
    "moves": [
        {"from_version": 1, "to_version": 2, "moved_at": EXAMPLE_TIME, "moved_by": EXAMPLE_KEY_ID},
        {"from_version": None, "to_version": 1, "moved_at": EXAMPLE_TIME, "moved_by": None},
    ],
}
