"""What the job queue and the scoring queue share: a claim of the oldest queued row, a
lease's values, and the message of a row whose worker went silent on its last attempt.

A table here is Job or ScoringTask: both have status, attempt, max_attempts, worker,
lease_expires_at, heartbeat_at, started_at, created_at and updated_at.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, Update, cast, func, literal, select, update

from service.core.settings import Settings
from service.core.states import QUEUED, RUNNING
from service.core.tables import Job, utcnow


def moment(value: datetime) -> ColumnElement[datetime]:
    """A datetime inside a SQL expression, bound as the tables' UTC type (not a bare literal)."""
    return literal(value, Job.finished_at.type)


def lease_values(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """A renewed lease: heartbeat now, expiring ``lease_seconds`` from now."""
    now = now or utcnow()
    return {
        "heartbeat_at": now,
        "lease_expires_at": now + timedelta(seconds=settings.lease_seconds),
        "updated_at": now,
    }


def claim_oldest(
    table: Any,
    *,
    is_sqlite: bool,
    worker_id: str,
    settings: Settings,
    among: ColumnElement[bool] | None = None,
) -> Update:
    """The UPDATE that takes ``table``'s oldest queued row (created_at, id), of those
    ``among`` selects if given (e.g. one project's), for ``worker_id``: running, its next
    attempt, leased; add ``.returning(...)``."""
    now = utcnow()
    values = {
        "status": RUNNING,
        "attempt": table.attempt + 1,
        "worker": worker_id,
        "started_at": func.coalesce(table.started_at, moment(now)),
        **lease_values(settings, now),
    }
    oldest = (
        select(table.id)
        .where(table.status == QUEUED, *(() if among is None else (among,)))
        .order_by(table.created_at, table.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # concurrent claimers skip each other's rows
    )
    if is_sqlite:
        # BEGIN IMMEDIATE already serializes writers; one statement picks and takes.
        statement = update(table).where(
            table.id == oldest.scalar_subquery(), table.status == QUEUED
        )
    else:
        # UPDATE ... FROM (SELECT id ... FOR UPDATE SKIP LOCKED) AS oldest
        candidate = oldest.subquery("oldest")
        statement = update(table).where(table.id == candidate.c.id)
    return statement.values(values)


def worker_lost_error(table: Any, noun: str, settings: Settings) -> ColumnElement[str]:
    """The error of a row failed as worker_lost: its attempts named by SQL, row by row."""
    lost = (
        f"the {noun}'s worker stopped renewing its lease "
        f"(lease_seconds={settings.lease_seconds:g}) on its last allowed attempt"
    )
    attempts = cast(table.attempt, String) + " of " + cast(table.max_attempts, String)
    return literal(f"{lost} (attempt ") + attempts + ")"
