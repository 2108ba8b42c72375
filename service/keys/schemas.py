"""Schemas of /v1/keys and /v1/audit-events."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_KEY_ID = "3f2a1b9c8d7e"
EXAMPLE_ADMIN_KEY_ID = "9c8d7e3f2a1b"
EXAMPLE_TIME = "2026-12-06T12:00:00Z"
NAME_MAX = 200  # the api_keys.name column
# A key's id: the first 12 hex digits of its SHA-256 (service.core.api_keys.KEY_ID_LENGTH).
KEY_ID_PATTERN = "^[0-9a-f]{12}$"

RoleName = Literal["reader", "trainer", "admin"]


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"role": "trainer", "name": "nightly training"}]},
    )

    role: RoleName = Field(
        description="reader: GET only; trainer: also upload, train, predict, cancel; "
        "admin: also delete, keys, quotas, the audit log"
    )
    name: str | None = Field(
        default=None, max_length=NAME_MAX, description="what the key is for (shown in listings)"
    )


class KeyPublic(BaseModel):
    """A key as listings show it: never the key itself, never its digest."""

    key_id: str = Field(description="the key's public name: jobs and the audit log use it")
    project: str
    role: RoleName
    name: str | None
    created_at: datetime
    created_by: str | None = Field(description="the id of the key that made it (null: the CLI)")
    revoked_at: datetime | None = Field(description="null: the key works")


class KeyCreated(BaseModel):
    """A new key: ``key`` is shown in this answer only; the service keeps its SHA-256."""

    key: str = Field(description="the key to send (`Authorization: Bearer <key>`): shown once")
    key_id: str
    project: str
    role: RoleName
    name: str | None
    created_at: datetime
    created_by: str | None


class KeysPublic(BaseModel):
    data: list[KeyPublic]
    next_cursor: str | None


class AuditEventPublic(BaseModel):
    id: int = Field(description="increasing: a later event has a larger id")
    at: datetime
    key_id: str | None = Field(description="who: the key's id (null: the CLI, or no keys)")
    action: str = Field(description="what, as `<resource>.<verb>`, e.g. `job.cancel`")
    target: str = Field(description="the id (or name) of the row it changed")
    detail: dict[str, Any] | None


class AuditEventsPublic(BaseModel):
    data: list[AuditEventPublic] = Field(description="newest first")
    next_cursor: str | None


EXAMPLE_KEY = {
    "key_id": EXAMPLE_KEY_ID,
    "project": "team-a",
    "role": "trainer",
    "name": "nightly training",
    "created_at": EXAMPLE_TIME,
    "created_by": EXAMPLE_ADMIN_KEY_ID,
    "revoked_at": None,
}
EXAMPLE_CREATED = {
    "key": "bpk_" + "5e" * 32,
    **{name: value for name, value in EXAMPLE_KEY.items() if name != "revoked_at"},
}
EXAMPLE_EVENT = {
    "id": 42,
    "at": EXAMPLE_TIME,
    "key_id": EXAMPLE_KEY_ID,
    "action": "job.cancel",
    "target": "5b0c3c1e9d0a4f5e8a7b6c5d4e3f2a1b",
    "detail": {"status": "cancelled"},
}
