"""What the readiness probe asks of the database: its revision and the workers' last beat."""

from datetime import timedelta
from functools import cache
from typing import NamedTuple

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.core.tables import Job, utcnow


class DatabaseState(NamedTuple):
    revision: str | None  # the migration the database is at
    workers_seen_seconds_ago: float | None  # None: no heartbeat stored (an idle queue)


@cache
def head_revision() -> str | None:
    """The newest migration this code ships: fixed for the life of the process.

    Alembic is imported here, not at the top: it costs ~0.13 s at every API start.
    """
    from alembic.script import ScriptDirectory

    from service.core.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def database_state(*, session: Session) -> DatabaseState | None:
    """The database's revision and latest worker heartbeat; None if it cannot answer."""
    try:
        revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        last_beat = session.scalar(select(func.max(Job.heartbeat_at)))
    except SQLAlchemyError:
        return None
    seen = (utcnow() - last_beat) / timedelta(seconds=1) if last_beat else None
    return DatabaseState(revision, seen)
