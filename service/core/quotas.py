"""Per-project quotas: stored bytes, queued jobs, running jobs (docs/quotas.md).

A project's quota is its row's value (``projects``, set by ``PUT /v1/project/quotas``), or,
where the row leaves it NULL or there is no row, the service's default
(BACKPROP_PROJECT_MAX_*); None is unlimited.

- Stored bytes are the sum of ``size_bytes`` (the uploaded file's bytes) of the project's
  datasets: known before the file is parsed, the same number GET /v1/datasets shows, and
  cheap to add up. An upload that would pass it is a 413 (``check_stored_bytes``).
- Queued jobs: POST /v1/jobs and POST /v1/sweeps past it are a 429 with Retry-After
  (``reserve_project_queue_room``), beside the per-key budget of service.core.limits.
- Running jobs: no worker claims a job of a project already running that many
  (service.queue.fair_claim).

Every refusal is problem+json with ``quota``, ``project``, ``usage`` and ``limit`` members.
Counts name the project explicitly, so they hold in a request and outside one (workers).
"""

import hashlib
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.core.errors import PayloadTooLarge
from service.core.limits import QUEUE_RETRY_AFTER_SECONDS, TooManyRequests
from service.core.settings import Settings
from service.core.states import CANCELLING, QUEUED, RUNNING
from service.core.tables import Dataset, Job, Project

QuotaName = Literal["max_stored_bytes", "max_queued_jobs", "max_running_jobs"]
QUOTA_NAMES: tuple[QuotaName, ...] = ("max_stored_bytes", "max_queued_jobs", "max_running_jobs")
RUNNING_STATES = (RUNNING, CANCELLING)  # a cancelling job still holds its worker


@dataclass(frozen=True)
class Quotas:
    """A project's effective quotas (None: unlimited) and which come from the defaults."""

    max_stored_bytes: int | None
    max_queued_jobs: int | None
    max_running_jobs: int | None
    from_defaults: tuple[QuotaName, ...]


@dataclass(frozen=True)
class Usage:
    stored_bytes: int
    queued_jobs: int
    running_jobs: int


def default_quota(settings: Settings, name: QuotaName) -> int | None:
    """The service's default for ``name``: BACKPROP_PROJECT_<NAME>."""
    return getattr(settings, f"project_{name}")


def effective_quotas(row: Project | None, settings: Settings) -> Quotas:
    """``row``'s quotas with its NULLs (or every quota, without a row) taken from ``settings``."""
    values: dict[str, int | None] = {}
    defaults: list[QuotaName] = []
    for name in QUOTA_NAMES:
        own = getattr(row, name) if row is not None else None
        if own is None:
            defaults.append(name)
            own = default_quota(settings, name)
        values[name] = own
    return Quotas(**values, from_defaults=tuple(defaults))


def project_quotas(session: Session, project: str, settings: Settings) -> Quotas:
    """The effective quotas of ``project`` (projects is not project-scoped: no filter)."""
    return effective_quotas(session.get(Project, project), settings)


def stored_bytes(session: Session, project: str, *, besides: str | None = None) -> int:
    """The bytes of ``project``'s datasets (leaving out the dataset ``besides``)."""
    statement = select(func.coalesce(func.sum(Dataset.size_bytes), 0)).where(
        Dataset.project == project
    )
    if besides is not None:
        statement = statement.where(Dataset.id != besides)
    return int(session.scalar(statement) or 0)


def job_count(session: Session, project: str, states: tuple[str, ...]) -> int:
    """How many of ``project``'s jobs are in ``states`` (index ix_jobs_project_status)."""
    statement = select(func.count()).select_from(Job)
    return int(session.scalar(statement.where(Job.project == project, Job.status.in_(states))))


def project_usage(session: Session, project: str) -> Usage:
    return Usage(
        stored_bytes=stored_bytes(session, project),
        queued_jobs=job_count(session, project, (QUEUED,)),
        running_jobs=job_count(session, project, RUNNING_STATES),
    )


def lock_project(session: Session, project: str, purpose: str) -> None:
    """Serialise a quota's count and the insert it allows, per project and purpose.

    SQLite: the write session's BEGIN IMMEDIATE already does. PostgreSQL: a
    transaction-scoped advisory lock (released at commit or rollback), so call this inside
    the inserting transaction.
    """
    if session.get_bind().dialect.name == "postgresql":
        name = f"backprop project {purpose} of {project}".encode()
        number = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(number)))


def _refusal(quota: QuotaName, project: str, has: str, limit: int, outcome: str) -> str:
    """ "project 'p' <has> and its quota <quota> is <limit> (where it is set): <outcome>"."""
    return (
        f"project {project!r} {has} and its quota {quota} is {limit:,} (PUT /v1/project/quotas, "
        f"or the service's default BACKPROP_PROJECT_{quota.upper()}): {outcome}"
    )


def check_stored_bytes(
    session: Session,
    *,
    project: str,
    settings: Settings,
    adding: int,
    besides: str | None = None,
    lock: bool = False,
) -> None:
    """413 unless ``project`` may store ``adding`` more bytes (0: is it under its quota at all).

    ``besides``: a dataset of this transaction not to count twice. ``lock``: hold the
    project's lock until commit (the check just before an upload's commit).
    """
    limit = project_quotas(session, project, settings).max_stored_bytes
    if limit is None:
        return
    if lock:
        lock_project(session, project, "stored bytes")
    usage = stored_bytes(session, project, besides=besides)
    if usage + adding > limit or (adding == 0 and usage >= limit):
        outcome = f"this upload's {adding:,} bytes would pass it" if adding else "it is full"
        raise PayloadTooLarge(
            _refusal(
                "max_stored_bytes",
                project,
                f"stores {usage:,} bytes of datasets",
                limit,
                f"{outcome}; delete datasets it no longer needs",
            ),
            quota="max_stored_bytes",
            project=project,
            usage=usage,
            limit=limit,
            adding=adding,
        )


def reserve_project_queue_room(
    session: Session, *, project: str, settings: Settings, adding: int
) -> None:
    """429 (Retry-After) unless ``project`` may have ``adding`` more queued jobs; call it in
    the inserting transaction (the count and the insert must not interleave)."""
    limit = project_quotas(session, project, settings).max_queued_jobs
    if limit is None:
        return
    lock_project(session, project, "queued jobs")
    usage = job_count(session, project, (QUEUED,))
    if usage + adding > limit:
        asked = "1 more" if adding == 1 else f"{adding:,} more (one per trial)"
        raise TooManyRequests(
            _refusal(
                "max_queued_jobs",
                project,
                f"has {usage:,} queued jobs",
                limit,
                f"{asked} would pass it; retry once workers have started some of them",
            ),
            retry_after=QUEUE_RETRY_AFTER_SECONDS,
            quota="max_queued_jobs",
            project=project,
            usage=usage,
            limit=limit,
            adding=adding,
        )
