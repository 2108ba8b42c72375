"""/v1/project: the caller's project (any role) and its quotas (an admin sets them)."""

from fastapi import APIRouter

from service.core.auth import current_principal
from service.core.deps import SessionDep, SettingsDep, WriteSessionDep
from service.core.schemas import problem_responses
from service.project import service as project_service
from service.project.schemas import ProjectPublic, QuotasUpdate

router = APIRouter(prefix="/v1/project", tags=["project"])

INVALID = "max_queued_jobs: Input should be greater than or equal to 0"
FORBIDDEN = (
    "this API key is a reader of project 'default': PUT /v1/project/quotas needs the admin role"
)


@router.get(
    "",
    summary="The caller's project: its quotas and what it uses of them",
    responses=problem_responses(503),
)
def get_project(session: SessionDep, settings: SettingsDep) -> ProjectPublic:
    """The project of the caller's key, the key's role, the quotas in force (null:
    unlimited; `from_defaults` names those left to the service's BACKPROP_PROJECT_MAX_*)
    and the project's usage."""
    return project_service.project_view(
        session=session, principal=current_principal(), settings=settings
    )


@router.put(
    "/quotas",
    summary="Set the project's quotas (null: the service's default)",
    responses=problem_responses(
        403,
        422,
        503,
        details={403: FORBIDDEN, 422: INVALID},
    ),
)
def put_quotas(
    quotas: QuotasUpdate, session: WriteSessionDep, settings: SettingsDep
) -> ProjectPublic:
    """Replace the three quotas of the caller's project; each is an integer >= 0, or null
    (or left out) for the service's default. They apply from the next request or claim:
    nothing already stored, queued or running is undone."""
    return project_service.set_quotas(
        session=session, principal=current_principal(), quotas=quotas, settings=settings
    )
