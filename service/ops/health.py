"""Liveness and readiness probes."""

from datetime import timedelta
from functools import cache

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from service.core.deps import SessionDep, SettingsDep
from service.core.errors import problem
from service.core.schemas import problem_responses
from service.core.tables import Job, utcnow

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})


class Readiness(BaseModel):
    status: str
    database: str
    migration: str | None
    workers_seen_seconds_ago: float | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "database": "ok",
                    "migration": "0001",
                    "workers_seen_seconds_ago": 1.8,
                }
            ]
        }
    )


NOT_READY = {503: "the database is unreachable or not migrated"}


@cache
def head_revision() -> str | None:
    """The newest migration this code ships: fixed for the life of the process.

    Alembic is imported here, not at the top: it costs ~0.13 s at every API start.
    """
    from alembic.script import ScriptDirectory

    from service.core.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@router.get("/healthz", summary="The process is up")
def get_health() -> Health:
    """Answers 200 while the API process runs; checks nothing else."""
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Ready to serve: database reachable, migrations at head, workers seen",
    responses={
        503: {
            **problem_responses(503, details=NOT_READY)[503],
            "description": "Not ready; the body says which check failed",
        }
    },
)
def get_readiness(session: SessionDep, settings: SettingsDep) -> Readiness:
    """503 problem+json unless the database answers and its schema is at the head revision.

    ``workers_seen_seconds_ago`` reports the latest worker heartbeat (informational:
    an idle queue has no heartbeats).
    """
    try:
        current = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        last_beat = session.scalar(select(func.max(Job.heartbeat_at)))
    except SQLAlchemyError:
        return problem(
            503,
            "Service Unavailable",
            "the database is unreachable or not migrated",
            headers={"Retry-After": "1"},
        )
    head = head_revision()
    if current != head:
        return problem(
            503, "Service Unavailable", f"database at revision {current}, code at {head}"
        )
    seen = (utcnow() - last_beat) / timedelta(seconds=1) if last_beat else None
    return Readiness(status="ok", database="ok", migration=current, workers_seen_seconds_ago=seen)
