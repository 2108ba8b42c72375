"""Projects: every row a caller can name belongs to one, and a request sees only its own.

The key check (service.core.auth) sets the request's project (``project_scope``) before
any route runs; with no keys anywhere every request is the default project's. Then every
ORM statement a session runs in that request, SELECT, UPDATE and DELETE alike, gets
``WHERE <entity>.project = :project`` for each project-scoped entity it touches
(``with_loader_criteria``, added by the ``do_orm_execute`` hook below). A row of another
project is therefore not found, exactly as a missing one: the routes answer the same 404
without knowing projects exist. New rows take the request's project as their column
default.

Outside a request (the workers, the sweeps of expired leases, the CLI's own tools) no
project is set and nothing is filtered: those work on the whole queue. Rows they insert
must name their project (a worker's model takes its job's).

Raw SQL (service.core.point_reads) is not rewritten: each such statement names the
project itself.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from sqlalchemy import String, event
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, with_loader_criteria

DEFAULT_PROJECT = "default"
PROJECT_MAX_LENGTH = 64
PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"  # lower case: "Team" and "team" are one

_project: ContextVar[str | None] = ContextVar("backprop_project", default=None)


def current_project() -> str | None:
    """The project of the request being served; None outside a request (workers, tools)."""
    return _project.get()


@contextmanager
def project_scope(project: str | None) -> Iterator[None]:
    """Run the block as ``project`` (None: every project, as a worker sees them)."""
    token = _project.set(project)
    try:
        yield
    finally:
        _project.reset(token)


def request_project() -> str:
    """The request's project (the default one outside a request): a new row's, and the one
    raw SQL must name itself."""
    return _project.get() or DEFAULT_PROJECT


def project_column(*, primary_key: bool = False) -> Mapped[str]:
    """A row's project: the request's when inserted in one, "default" for rows from before."""
    return mapped_column(
        String(PROJECT_MAX_LENGTH),
        primary_key=primary_key,
        default=request_project,
        server_default=DEFAULT_PROJECT,
    )


class ProjectScoped:
    """A table whose rows belong to a project (a mixin for service.core.tables' classes)."""

    project: Mapped[str] = project_column()


@event.listens_for(Session, "do_orm_execute")
def _only_the_requests_project(state: ORMExecuteState) -> None:
    """Add ``project = :project`` for every scoped entity of the statement, in a request."""
    project = _project.get()
    if project is None or not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the row itself was found under the criteria already
    # One option for the mixin covers every scoped entity, named in the statement or only in
    # select_from() or a join (a statement's own mappers leave those out).
    state.statement = state.statement.options(_criteria(project))


@lru_cache(maxsize=1024)
def _criteria(project: str) -> Any:
    """``WHERE entity.project = :project`` for every ProjectScoped entity wherever a
    statement uses it, made once per project. The value is a bound parameter (the lambda's
    closure), so one compiled statement serves every project."""
    return with_loader_criteria(
        ProjectScoped, lambda cls: cls.project == project, include_aliases=True
    )
