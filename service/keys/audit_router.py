"""/v1/audit-events: the project's audit log, newest first, for its admins.

Every change the API makes (a dataset uploaded or deleted, a job created, cancelled or
deleted, a model deleted, a sweep, a registration, an alias set or removed, a scoring
task, a key made or revoked, a quota changed) adds one event in the change's own
transaction (service.core.audit): who (the key's id), what, which row, and when.
"""

from fastapi import APIRouter

from service.core.deps import PageDep, SessionDep
from service.core.schemas import LIMIT_PROBLEM, problem_responses
from service.keys import service
from service.keys.schemas import EXAMPLE_EVENT, AuditEventPublic, AuditEventsPublic

router = APIRouter(prefix="/v1/audit-events", tags=["audit"])


@router.get(
    "",
    summary="The project's audit log: who changed what, and when (newest first)",
    responses={
        200: {
            "description": "A page of events; follow `next_cursor` for older ones",
            "content": {
                "application/json": {"example": {"data": [EXAMPLE_EVENT], "next_cursor": None}}
            },
        },
        **problem_responses(422, 503, details={422: LIMIT_PROBLEM}),
    },
)
def list_audit_events(session: SessionDep, page: PageDep) -> AuditEventsPublic:
    """One page of the caller's project's events, newest first."""
    rows, next_cursor = service.audit_page(session=session, limit=page.limit, cursor=page.cursor)
    return AuditEventsPublic(
        data=[AuditEventPublic.model_validate(row, from_attributes=True) for row in rows],
        next_cursor=next_cursor,
    )
