"""Cursor pagination over (created_at, id), newest first: stable under inserts."""

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from service.core.errors import field_problem

Row = TypeVar("Row")
CURSOR_FIELD, NOT_ISSUED = "query.cursor", "not a cursor this service issued"
DEFAULT_PAGE = 50  # a list route's page size when `limit` is not given (at most page_limit)
ID_PATTERN = re.compile(r"[0-9a-f]{32}")  # service.core.tables.new_id


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = datetime.fromisoformat(created_at)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise field_problem(CURSOR_FIELD, NOT_ISSUED) from error
    # Only values this service could have written reach the database.
    if moment.tzinfo is None or not isinstance(row_id, str) or not ID_PATTERN.fullmatch(row_id):
        raise field_problem(CURSOR_FIELD, NOT_ISSUED)
    return moment, row_id


def page(
    session: Session, statement: Select[Any], entity: Any, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of ``statement`` (already filtered), newest first, and the next cursor."""
    if cursor is not None:
        created_at, row_id = decode_cursor(cursor)
        statement = statement.where(
            or_(
                entity.created_at < created_at,
                and_(entity.created_at == created_at, entity.id < row_id),
            )
        )
    statement = statement.order_by(entity.created_at.desc(), entity.id.desc()).limit(limit + 1)
    rows = list(session.scalars(statement))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].created_at, rows[-1].id)
