"""The caller's project: its view, and an admin's change of its quotas."""

from dataclasses import asdict

from sqlalchemy.orm import Session

from service.core.api_keys import Principal, ensure_project
from service.core.audit import record
from service.core.quotas import QUOTA_NAMES, project_quotas, project_usage
from service.core.settings import Settings
from service.project.schemas import ProjectPublic, QuotasPublic, QuotasUpdate, UsagePublic


def project_view(*, session: Session, principal: Principal, settings: Settings) -> ProjectPublic:
    """The principal's project: name, the principal's role, quotas in force and usage."""
    quotas = asdict(project_quotas(session, principal.project, settings))
    quotas["from_defaults"] = list(quotas["from_defaults"])
    return ProjectPublic(
        name=principal.project,
        role=principal.role.name,
        quotas=QuotasPublic(**quotas),
        usage=UsagePublic(**asdict(project_usage(session, principal.project))),
    )


def set_quotas(
    *, session: Session, principal: Principal, quotas: QuotasUpdate, settings: Settings
) -> ProjectPublic:
    """Replace the project's own quotas (None: the service's default); commits."""
    row = ensure_project(session, principal.project)  # a project may have no row yet
    for name in QUOTA_NAMES:
        setattr(row, name, getattr(quotas, name))
    record(
        session, "project.quotas", principal.project, {n: getattr(quotas, n) for n in QUOTA_NAMES}
    )
    session.commit()
    return project_view(session=session, principal=principal, settings=settings)
