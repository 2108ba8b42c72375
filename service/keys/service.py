"""A project's keys and audit log, as its admins manage and read them over the API.

``ApiKey`` rows are not project-scoped (the key check finds a key whatever its project),
so every function here names the caller's project itself: a key of another project is
found exactly as a missing one is not. ``AuditEvent`` rows are project-scoped, and the
request's filter (service.core.tenancy) keeps the log to the caller's project.
"""

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from service.core.api_keys import create_key, key_view, revoke_key
from service.core.audit import record
from service.core.auth import current_principal
from service.core.errors import field_problem, not_found
from service.core.pagination import CURSOR_FIELD, NOT_ISSUED
from service.core.roles import Role
from service.core.tables import ApiKey, AuditEvent
from service.keys.schemas import KEY_ID_PATTERN, KeyCreate, KeyCreated, KeyPublic

KEY_ID = re.compile(KEY_ID_PATTERN)


def create(*, session: Session, key_in: KeyCreate) -> KeyCreated:
    """A new key of the caller's project; commits. The answer holds the key, once."""
    caller = current_principal()
    key, row = create_key(
        session,
        project=caller.project,
        role=Role[key_in.role],
        name=key_in.name,
        created_by=caller.key_id,
    )
    record(session, "key.create", row.key_id, {"role": row.role, "name": row.name})
    session.commit()
    view = key_view(row)
    del view["revoked_at"]
    return KeyCreated(key=key, **view)


def revoke(*, session: Session, key_id: str) -> None:
    """Revoke a key of the caller's project; commits. 404 for an unknown key and for
    another project's alike. Revoking a revoked key changes nothing and records nothing."""
    project = current_principal().project
    row = session.get(ApiKey, key_id) if KEY_ID.fullmatch(key_id) else None
    live = row is not None and row.project == project and row.revoked_at is None
    if revoke_key(session, key_id, project=project) is None:
        raise not_found("API key", key_id)
    if live:
        record(session, "key.revoke", key_id)
    session.commit()


def list_page(
    *, session: Session, limit: int, cursor: str | None
) -> tuple[list[KeyPublic], str | None]:
    """One page of the caller's project's keys, newest first, revoked ones included."""
    statement = select(ApiKey).where(ApiKey.project == current_principal().project)
    if cursor is not None:
        created_at, key_id = _decode(cursor)
        statement = statement.where(
            or_(
                ApiKey.created_at < created_at,
                and_(ApiKey.created_at == created_at, ApiKey.key_id < key_id),
            )
        )
    statement = statement.order_by(ApiKey.created_at.desc(), ApiKey.key_id.desc())
    rows = list(session.scalars(statement.limit(limit + 1)))
    following = None
    if len(rows) > limit:
        rows = rows[:limit]
        following = _encode([rows[-1].created_at.isoformat(), rows[-1].key_id])
    return [KeyPublic(**key_view(row)) for row in rows], following


def audit_page(
    *, session: Session, limit: int, cursor: str | None
) -> tuple[list[AuditEvent], str | None]:
    """One page of the project's audit log, newest first (the request's filter keeps it
    to the caller's project: AuditEvent is project-scoped)."""
    statement = select(AuditEvent)
    if cursor is not None:
        before = _decode_event_cursor(cursor)
        statement = statement.where(AuditEvent.id < before)
    rows = list(session.scalars(statement.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, _encode([rows[-1].id])


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decoded(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise field_problem(CURSOR_FIELD, NOT_ISSUED) from error


def _decode(cursor: str) -> tuple[datetime, str]:
    """A keys cursor: (created_at, key_id), each as this service writes them."""
    values = _decoded(cursor)
    try:
        created_at, key_id = values
        moment = datetime.fromisoformat(created_at)
    except (ValueError, TypeError) as error:
        raise field_problem(CURSOR_FIELD, NOT_ISSUED) from error
    if moment.tzinfo is None or not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
        raise field_problem(CURSOR_FIELD, NOT_ISSUED)
    return moment, key_id


def _decode_event_cursor(cursor: str) -> int:
    """An audit cursor: the last id shown (only a positive integer reaches the database)."""
    values = _decoded(cursor)
    if not (isinstance(values, list) and len(values) == 1 and type(values[0]) is int):
        raise field_problem(CURSOR_FIELD, NOT_ISSUED)
    if not 0 < values[0] < 2**63:
        raise field_problem(CURSOR_FIELD, NOT_ISSUED)
    return values[0]
