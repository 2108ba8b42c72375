"""The fair claim: which queued job a free worker takes, so that no project starves another.

Rule (docs/quotas.md):

1. Among the projects with queued jobs that run fewer than their ``max_running_jobs``
   (service.core.quotas), take the one with the fewest running jobs;
2. ties go to the project whose latest job start is oldest (one that never started a
   job first), then to the name, so every worker ranks them alike;
3. then that project's oldest queued job (created_at, id), as the queue always did.

With one worker, a project that queued 100 jobs and one that queued 1 therefore take
turns: once the first project's job ends, both run none, and the second's latest start
is the older. The counts are one GROUP BY over the live jobs (queued, running,
cancelling); the tie-break is max(started_at) per tied project on the index
ix_jobs_project_started_at.

Concurrency. On SQLite the claim runs in a BEGIN IMMEDIATE transaction: one claimer at
a time, so the counts hold. On PostgreSQL claimers run at once: a project's rows are taken
with FOR UPDATE SKIP LOCKED (if all of the chosen project's queued rows are locked by other
claimers, the next project is tried), and for a project with a running quota the claimer
first takes a transaction-scoped advisory lock of that project (try-lock: if another
claimer holds it, the next project is tried, never waited for, so two claimers cannot
deadlock) and counts its running jobs again under it: the other claimer's job, committed
before its lock was released, is counted.
"""

import hashlib
from typing import Any

from sqlalchemy import Row, bindparam, case, func, select
from sqlalchemy.orm import Session

from service.core.quotas import RUNNING_STATES, job_count
from service.core.settings import Settings
from service.core.states import QUEUED
from service.core.tables import Job, Project
from service.queue.leases import claim_oldest


def claim_fairly(
    session: Session,
    *,
    is_sqlite: bool,
    worker_id: str,
    settings: Settings,
    returning: tuple[Any, ...],
) -> Row[Any] | None:
    """Take the fair next job for ``worker_id`` (the ``returning`` columns of its row), or
    None when no project may run another now. Call it inside the claim's transaction."""
    for project in ranked_projects(session, settings):
        if not is_sqlite and not _room_under_lock(session, project.name, project.limit):
            continue
        statement = claim_oldest(
            Job,
            is_sqlite=is_sqlite,
            worker_id=worker_id,
            settings=settings,
            among=Job.project == project.name,
        )
        row = session.execute(statement.returning(*returning)).one_or_none()
        if row is not None:
            return row
    return None


class _Candidate:
    __slots__ = ("last_start", "limit", "name", "running")

    def __init__(self, name: str, running: int, limit: int | None):
        self.name, self.running, self.limit = name, running, limit
        self.last_start: float | None = None


# Built once: a claim is the queue's hot path, and building SQLAlchemy expressions costs
# more than running these on SQLite. Each live project's queued and running jobs, and its
# own running quota (NULL: none, or no row; the default then applies).
_QUEUED = func.sum(case((Job.status == QUEUED, 1), else_=0))
_LIVE_PROJECTS = (
    select(Job.project, _QUEUED, func.count() - _QUEUED, Project.max_running_jobs)
    .outerjoin(Project, Project.name == Job.project)
    .where(Job.status.in_((QUEUED, *RUNNING_STATES)))
    .group_by(Job.project, Project.max_running_jobs)
)
# A project's latest job start: one step down ix_jobs_project_started_at.
_LAST_START = select(func.max(Job.started_at)).where(Job.project == bindparam("project"))


def ranked_projects(session: Session, settings: Settings) -> list[_Candidate]:
    """The projects that may start a job now, the fair claim's choice first."""
    default = settings.project_max_running_jobs
    candidates = []
    for name, queued, running, own in session.execute(_LIVE_PROJECTS):
        limit = own if own is not None else default
        if queued and (limit is None or running < limit):
            candidates.append(_Candidate(name, int(running), limit))
    if len(candidates) > 1:
        fewest = min(c.running for c in candidates)
        for candidate in candidates:
            if candidate.running == fewest:  # only ties need the look-up
                started = session.scalar(_LAST_START, {"project": candidate.name})
                candidate.last_start = started.timestamp() if started is not None else None
    return sorted(
        candidates,
        key=lambda c: (
            c.running,
            c.last_start is not None,  # never started first
            c.last_start or 0.0,
            c.name,
        ),
    )


def _lock_number(project: str) -> int:
    digest = hashlib.sha256(f"backprop claims of {project}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _room_under_lock(session: Session, project: str, limit: int | None) -> bool:
    """PostgreSQL: whether ``project`` may start a job, decided under its claim lock (held
    to the commit); False when another claimer holds the lock. Unlimited: always True."""
    if limit is None:
        return True
    if not session.scalar(select(func.pg_try_advisory_xact_lock(_lock_number(project)))):
        return False
    return job_count(session, project, RUNNING_STATES) < limit
