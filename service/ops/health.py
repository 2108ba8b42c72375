"""Liveness and readiness probes."""

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from service.core.deps import SessionDep, SettingsDep
from service.core.errors import problem
from service.core.schemas import problem_responses
from service.ops import probes

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
    state = probes.database_state(session=session)
    if state is None:
        return problem(
            503,
            "Service Unavailable",
            "the database is unreachable or not migrated",
            headers={"Retry-After": "1"},
        )
    head = probes.head_revision()
    if state.revision != head:
        return problem(
            503, "Service Unavailable", f"database at revision {state.revision}, code at {head}"
        )
    return Readiness(
        status="ok",
        database="ok",
        migration=state.revision,
        workers_seen_seconds_ago=state.workers_seen_seconds_ago,
    )
